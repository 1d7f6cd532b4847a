"""Population self-training (Metz, Freeman, Maheswaranathan, Sohl-Dickstein 2021, Training learned
optimizers with randomly initialized learned optimizers, arXiv:2101.07367): members that train each
other's meta-parameters, orchestrated by population-based training (`pbt`)."""
