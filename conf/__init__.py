"""lossbench's Hydra configs, shipped inside the package as `lossbench.conf`."""
