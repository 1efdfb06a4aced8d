"""The forum reply's system (aleph routing, the aleph-void autoencoder), reported as section 13, one module each."""
