#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS the runtime loads at run time for matrix products (`GEMM`): the first of
/// `candidates` that loads and has `cblas_sgemm`. Loading with dlopen means `swift build` needs
/// no BLAS headers, the binary does not name the library (`vessel image` ships the first one
/// found), and a machine without one still runs every model on the built-in kernel.
/// `VESSEL_BLAS=none` forces the built-in kernel (for testing).
public enum BLASLibrary {
    public static let candidates = ["libopenblas.so.0", "libopenblas.so", "libcblas.so.3", "libblas.so.3"]

    typealias CblasSgemm =
        @convention(c) (
            Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
            UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
        ) -> Void

    /// The library's dlopen handle, searched once. (Opaque, set once and only read.)
    nonisolated(unsafe) private static let library: UnsafeMutableRawPointer? = {
        if ProcessInfo.processInfo.environment["VESSEL_BLAS"] == "none" { return nil }
        for name in candidates {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            if dlsym(handle, "cblas_sgemm") != nil { return handle }
        }
        return nil
    }()

    /// `cblas_sgemm`, with OpenBLAS's own threads turned off: large products are split across the
    /// runtime's worker threads instead (`GEMM.multiply`), the same threads every other kernel
    /// uses, so two thread pools do not spin against each other on the same cores.
    static let sgemm: CblasSgemm? = {
        guard let function = library.flatMap({ dlsym($0, "cblas_sgemm") }) else { return nil }
        setThreads?(1)
        return unsafeBitCast(function, to: CblasSgemm.self)
    }()

    private typealias SetThreads = @convention(c) (Int32) -> Void
    /// Present when the library found is OpenBLAS.
    private static let setThreads: SetThreads? = library.flatMap { dlsym($0, "openblas_set_num_threads") }.map { unsafeBitCast($0, to: SetThreads.self) }
}
