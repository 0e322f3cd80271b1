"""Reading prediction files and writing outputs safely."""
