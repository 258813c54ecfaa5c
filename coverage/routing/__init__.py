"""Travel-time engines: the road graph, the straight-line proxy, and the engine contract."""
