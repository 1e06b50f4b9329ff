"""The vehicle simulator: drive cycles, energy, position, body and cabin, emitted as VSS values."""
