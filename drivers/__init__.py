"""Hardware only: one interface per device kind, real backends and simulators, no business rules."""
