"""Human vision: where a change is hard to see (JND), and how visible a change is (FLIP)."""
