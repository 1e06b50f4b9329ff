"""Automations and scenes: trigger -> condition -> action on the signal broker, with durable
timers, traces, and the car's policy in control. ``AutomationsComponent`` plugs it into a hub."""
