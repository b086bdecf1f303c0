"""Collection: everything that writes landing files — the demo simulator, the Graph API
collector, and the daily collection window (its plan and its runs)."""
