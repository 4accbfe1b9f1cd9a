"""Reports of a results set: figures, tables and JSON files, and the HTML report."""
