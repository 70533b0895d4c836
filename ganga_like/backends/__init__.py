"""Backends: persistent config objects the user sets on jobs, and their Ray actors.

The contract every backend actor fulfils is in ``base.py``. Importing this
package never starts Ray.
"""
