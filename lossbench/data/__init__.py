"""The data a run trains on, all made into one `Dataset` (dataset.py) with train, validation and
test splits: synthetic data by task from NumPy alone (synthetic.py), a table file or one of
scikit-learn's bundled datasets (tabular.py, reading files through table_file.py and splitting
rows in splits.py), and the .npy context files a loss config names (arrays.py). load.py is the
one entry: the dataset a config names, and the checks every dataset passes before it trains.
Nothing here imports a framework.
"""
