// The header is the whole module (static inline); SwiftPM wants a source file.
