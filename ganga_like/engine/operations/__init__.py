"""Ganga's verbs, one module per family; ``Engine`` delegates to them.

Each function takes the engine's context (``engine.context.EngineContext``) first.
They follow Ganga's semantics with its known bugs fixed (docs/concepts.md): a partial
submit never leaves a master in ``submitting``; a kill is reported only once confirmed
(strict mode); removal kills first; a forced removal records what it may leave running.
"""
