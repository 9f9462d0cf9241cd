/// The Swift packages a binary of this build is made of (the `SwiftPackageList` plugin writes
/// the list at build time, from what SwiftPM resolved).
public enum SwiftPackages {
    public struct Package: Sendable, Hashable {
        public var name: String
        /// The repository URL (or registry identity, or local path).
        public var url: String
        public var version: String
        public var revision: String
    }
}
