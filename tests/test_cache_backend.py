"""The Redis cache backend shares one client per connection pool (brightback_site/cache.py)."""

from __future__ import annotations

import os

from django.core.cache import caches

from conftest import need


def test_the_redis_cache_reuses_its_client_and_still_answers():
    need(bool(os.environ.get("REDIS_URL")), "needs Redis (REDIS_URL)")
    cache = caches["default"]
    client = cache._cache.get_client("k")
    assert cache._cache.get_client("other", write=True) is client  # one server: one pool, one client
    cache.set("bb-test-shared-client", 41, timeout=5)
    assert cache.incr("bb-test-shared-client") == 42
    assert cache.get("bb-test-shared-client") == 42
    cache.delete("bb-test-shared-client")
    assert cache.get("bb-test-shared-client") is None
