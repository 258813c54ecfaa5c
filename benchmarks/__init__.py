"""Speed benchmarks of zones-blanches (``make bench``; never run by the tests)."""
