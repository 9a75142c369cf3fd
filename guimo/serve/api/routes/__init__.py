"""One router per resource; ``main.create_app`` mounts those the served models' kinds need."""
