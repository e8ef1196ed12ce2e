"""Reading images back: history, what each layer added/changed/deleted, find, diff, and
docker's tables.  Imports store, layer, oci and errors."""
