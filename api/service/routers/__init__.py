"""The service's routes: runs, their live events, and the system (e-stop, backends, instruments, health)."""
