"""The presets: mapping files for other tools' exports, shipped as package data so that
`--preset NAME` and `revbridge mapping show NAME` read the very file a user copies."""
