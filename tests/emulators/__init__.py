"""Local emulators of cloud apps, speaking each vendor's API as its own specs describe it."""
