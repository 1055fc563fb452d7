"""What running the system on a developer's or CI machine needs around it: private
databases, Redis db numbers and ports (`stores`), process groups and trees
(`processes`). Used by the tests, `fulfillment bench` and `fulfillment up`; no service
imports it."""
