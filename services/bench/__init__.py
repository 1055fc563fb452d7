"""`fulfillment bench`: measure each hot path beside its physical limit, in the same run."""
