"""Readers and writers: communes, services, waiting lists, roads, official downloads."""

__all__: list[str] = []
