"""The credit-bureau API's use cases: profiles, bulk lookup, change feed, access records."""
