#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The C library's math, by names that cannot be shadowed by a local `log` or `exp` (kernels have
// both). Not RealModule's `pow`, which is NaN for every negative base: ONNX Pow(-2, 3) is -8.
private func cExp(_ x: Double) -> Double { exp(x) }
private func cExp(_ x: Float) -> Float { exp(x) }
private func cLog(_ x: Double) -> Double { log(x) }
private func cLog(_ x: Float) -> Float { log(x) }
private func cTanh(_ x: Double) -> Double { tanh(x) }
private func cTanh(_ x: Float) -> Float { tanh(x) }
private func cPow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
private func cPow(_ x: Float, _ y: Float) -> Float { pow(x, y) }

enum Libm {
    @inline(__always) static func exp(_ x: Double) -> Double { cExp(x) }
    @inline(__always) static func exp(_ x: Float) -> Float { cExp(x) }
    @inline(__always) static func log(_ x: Double) -> Double { cLog(x) }
    @inline(__always) static func log(_ x: Float) -> Float { cLog(x) }
    @inline(__always) static func tanh(_ x: Double) -> Double { cTanh(x) }
    @inline(__always) static func tanh(_ x: Float) -> Float { cTanh(x) }
    @inline(__always) static func pow(_ x: Double, _ y: Double) -> Double { cPow(x, y) }
    @inline(__always) static func pow(_ x: Float, _ y: Float) -> Float { cPow(x, y) }
}
