"""One module per screen; each is a ``FlowScreen`` subclass rendering one flow."""
