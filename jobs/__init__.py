"""Jobs by purpose, with their schedules and sensors."""
