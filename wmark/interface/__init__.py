"""What the command line and the library agree on, free of torch: the shared defaults
(:mod:`~wmark.interface.defaults`) and the JSON reports' field names (:mod:`~wmark.interface.vocabulary`)."""
