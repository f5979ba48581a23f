"""The teacher: an expensive LLM called through litellm (docs/design.md §2.3, §3).

Layout (issue #23; every layer answers `protocol.Teacher.chat(messages, max_tokens)`):
- protocol.py: `TeacherReply`, the `Teacher` protocol;
- settings.py: `ClientSettings`, every client parameter declared once (from TeacherConfig);
- pricing.py: `TeacherPrices`, prices and prompt tokens (the oracle's simulated prices);
- backends: litellm_backend.py (synchronous litellm, error mapping), batch.py (provider
  batches; batch_journal.py its store of submitted batches);
- wrappers.py: `Journaled`, `Cached`, `Limited` around any backend; their stores are
  journal.py (reply journal) and reply_cache.py (cross-run reply cache);
- client.py: `TeacherClient`, the façade composing a backend and wrappers;
- config.py (TeacherConfig), endpoint.py (where requests go: an API or a local oracle),
  preflight.py (key and price checks), oracle/ (the offline oracle server, a test double).
"""
