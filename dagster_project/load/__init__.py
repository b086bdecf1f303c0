"""Loading: landing files and the accounts registry into the warehouse's `raw` schema."""
