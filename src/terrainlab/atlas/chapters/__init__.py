"""One package per chapter (ch03/, ch04/, …), one module per experiment."""
