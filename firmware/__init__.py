# The ESP32 side of hanport: device objects for the shapes in hanport.ports.
