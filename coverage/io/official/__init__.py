"""Official open data: the source table, the download cache, fetch and prepare."""
