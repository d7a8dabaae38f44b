"""Versions of the catalog's table layouts (the `meta` table records them).

Here rather than in catalog.py and search.py, so that the catalog can tell
whether its search tables are current without importing storage/search.py,
which a look-up (`newsarchive get`) does not otherwise need.
"""

CATALOG_SCHEMA = "1"  # captures, texts, ingested (storage/catalog.py)
SEARCH_SCHEMA = "1"  # articles, article_text, article_versions, search_indexes (storage/search.py)
