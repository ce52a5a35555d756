"""Where messages go: one module per service, all speaking the `Channel` protocol of `base`.

`CHANNELS` is the one registry (config `kind` -> class); `open_channel` builds a channel from its
configuration with an HTTP client handed in from outside (tests and the demo pass one that
reaches local receivers).
"""
