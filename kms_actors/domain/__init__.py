"""Pure, synchronous domain logic: key states, identifiers, encryption context, clocks."""
