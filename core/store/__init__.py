"""Where a cluster keeps its state: the embedded SQLite journal (the default) or etcd (clustered mode)."""
