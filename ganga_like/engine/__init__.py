"""What runs only in the service: the core (the facade the service drives), the monitor,
recovery and the leak audit, the operations (one verb family per module), postprocessing,
the backend pool and the queue-log repair. Clients, the GPI and the command line never
import it (tests/unit/test_layers.py)."""
