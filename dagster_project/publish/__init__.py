"""What the observatory publishes: the analysts' read-only copy of the warehouse, the
journalists' files (exports/) and the public web site (site/)."""
