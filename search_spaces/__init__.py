"""Search spaces: one file per space, each a class with `sample`, `build` and `describe`."""
