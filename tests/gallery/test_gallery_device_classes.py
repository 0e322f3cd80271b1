"""One gallery serves two device classes: cloud and edge queries over the cloud's items."""

import numpy as np
import pytest

from graceful.gallery import Gallery, IncompatibleVersionsError


def test_cloud_and_edge_queries_search_the_same_items():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 8)).astype(np.float32)
    ids = [f"item{i}" for i in range(50)]
    with Gallery(":memory:") as g:
        g.register_version("cloud", dim=8)
        g.add_with_ids(items, ids, version="cloud")
        g.register_version(
            "edge", dim=8, compatible_with=["cloud"], evidence={"top1_edge_cloud": 0.9}
        )
        g.register_version("edge-unchecked", dim=8)
        cloud_query = items[:5]
        edge_query = items[:5] + 0.01 * rng.normal(size=(5, 8)).astype(np.float32)
        for version, queries in (("cloud", cloud_query), ("edge", edge_query)):
            hits = g.search(queries, 1, version=version)
            assert hits.ids[:, 0].tolist() == ids[:5]
            assert set(hits.versions.reshape(-1)) == {"cloud"}
        with pytest.raises(IncompatibleVersionsError, match=r"'edge-unchecked'.*'cloud'"):
            g.search(edge_query, 1, version="edge-unchecked")
        assert g.status() == {"cloud": 50, "edge": 0, "edge-unchecked": 0}
