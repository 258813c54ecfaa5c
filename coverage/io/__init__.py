"""Readers and writers: communes, services, waiting lists, roads, official downloads."""
