import VesselJSON
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselManifest
import VesselModel
import VesselTensor

/// `/openapi.json`: an OpenAPI 3.0 description of this server with each served model's own
/// request and response — its input and output names, datatypes and shapes — so clients can be
/// generated or checked against it.
enum OpenAPI {
    static func document(models: [(name: String, model: LoadedModel)], version: String) -> [UInt8] {
        var paths: [String: Any] = [
            Route.live.path: ["get": operation("Liveness", responses: ["200": "The process is up"])],
            Route.ready.path: [
                "get": operation(
                    "Readiness: every model loaded, verified and its examples matched",
                    responses: ["200": "Ready", "503": "Not ready (loading, failed, or shutting down)"])
            ],
            Route.metrics.path: ["get": operation("Prometheus metrics", responses: ["200": "Text exposition format"])]
        ]
        for (name, model) in models {
            let signature = model.signature
            paths[Route.model.path(model: name)] = [
                "get": operation("Metadata of \(name) \(model.version)", responses: ["200": "Name, versions, platform, inputs, outputs"])
            ]
            paths[Route.modelReady.path(model: name)] = ["get": operation("Readiness of \(name)", responses: ["200": "Ready", "503": "Not ready"])]
            var infer = operation(
                model.manifest.description ?? "Inference with \(name)",
                responses: [
                    "400": "An input does not match the signature", "404": "Unknown model or version", "413": "Body too large",
                    "415": "Wrong content type", "503": "At capacity (see Retry-After) or not ready"
                ])
            infer["requestBody"] = [
                "required": true,
                "content": [
                    "application/json": [
                        "schema": [
                            "type": "object", "required": ["inputs"],
                            "properties": [
                                "id": ["type": "string"],
                                "inputs": [
                                    "type": "array", "minItems": signature.inputs.count, "maxItems": signature.inputs.count,
                                    "items": ["oneOf": signature.inputs.map { tensorSchema($0, withData: true) }]
                                ],
                                "outputs": [
                                    "type": "array",
                                    "items": [
                                        "type": "object", "required": ["name"],
                                        "properties": [
                                            "name": ["type": "string", "enum": signature.outputs.map(\.name)],
                                            "parameters": ["type": "object", "properties": ["binary_data": ["type": "boolean"]]]
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ]
                ]
            ]
            var responses = infer["responses"] as? [String: Any] ?? [:]
            responses["200"] = [
                "description": "The outputs",
                "content": [
                    "application/json": [
                        "schema": [
                            "type": "object",
                            "properties": [
                                "model_name": ["type": "string", "enum": [name]],
                                "model_version": ["type": "string", "enum": [model.version]],
                                "id": ["type": "string"],
                                "outputs": ["type": "array", "items": ["oneOf": signature.outputs.map { tensorSchema($0, withData: true) }]]
                            ]
                        ]
                    ]
                ]
            ]
            infer["responses"] = responses
            paths[Route.infer.path(model: name)] = ["post": infer]
        }
        if models.count == 1, let (name, model) = models.first {
            let features = model.signature.inputs.map(\.name)
            paths[Route.invocations.path] = [
                "post": [
                    "summary": "MLflow scoring protocol for \(name)",
                    "requestBody": [
                        "required": true,
                        "content": [
                            "application/json": [
                                "schema": [
                                    "type": "object",
                                    "description":
                                        "Exactly one of dataframe_split, dataframe_records, instances, inputs. Columns name the inputs (\(features.joined(separator: ", "))), or are the features of a single [batch, C] input in order.",
                                    "properties": [
                                        "dataframe_split": [
                                            "type": "object",
                                            "properties": [
                                                "columns": ["type": "array", "items": ["type": "string"]],
                                                "data": ["type": "array", "items": ["type": "array", "items": [:] as [String: Any]]]
                                            ]
                                        ],
                                        "dataframe_records": ["type": "array", "items": ["type": "object"]],
                                        "instances": ["type": "array"],
                                        "inputs": ["oneOf": [["type": "array"], ["type": "object"]]]
                                    ]
                                ]
                            ]
                        ]
                    ],
                    "responses": ["200": ["description": "{\"predictions\": …}, one key per output when there are several"]]
                ] as [String: Any]
            ]
        }
        if models.count == 1, let (name, model) = models.first {
            paths[Route.predictions.path] = [
                "post": [
                    "summary": "Cog's prediction API for \(name): one item, files as data: URIs",
                    "requestBody": [
                        "required": true,
                        "content": [
                            "application/json": [
                                "schema": [
                                    "type": "object", "required": ["input"],
                                    "properties": [
                                        "input": [
                                            "type": "object", "required": model.signature.inputs.map(\.name),
                                            "properties": Dictionary(
                                                uniqueKeysWithValues: model.signature.inputs.map {
                                                    ($0.name, ["description": $0.description ?? $0.dtype.rawValue] as [String: Any])
                                                })
                                        ]
                                    ]
                                ]
                            ]
                        ]
                    ],
                    "responses": ["200": ["description": "{\"status\": \"succeeded\", \"output\": …}"], "422": ["description": "An input does not fit"]]
                ] as [String: Any]
            ]
        }
        let document: [String: Any] = [
            "openapi": "3.0.3",
            "info": ["title": "Vessel inference server (Open Inference Protocol v2)", "version": version],
            "paths": paths
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = (try? encoder.encode(JSONValue(foundation: document))) ?? Data("{}".utf8)
        return [UInt8](data)
    }

    static func operation(_ summary: String, responses: [String: String]) -> [String: Any] {
        ["summary": summary, "responses": responses.mapValues { ["description": $0] }]
    }

    static func tensorSchema(_ spec: TensorSpec, withData: Bool) -> [String: Any] {
        let shape: [[String: Any]] = spec.shape.map { dimension in
            if case .fixed(let size) = dimension { return ["type": "integer", "enum": [size]] }
            return ["type": "integer", "minimum": 0]
        }
        let element: [String: Any] =
            switch spec.dtype {
            case .string: ["type": "string"]
            case .bool: ["type": "boolean"]
            case let dtype where dtype.isFloatingPoint: ["type": "number"]
            default: ["type": "integer"]
            }
        var properties: [String: Any] = [
            "name": ["type": "string", "enum": [spec.name]],
            "datatype": ["type": "string", "enum": [spec.dtype.oipName]],
            "shape": ["type": "array", "items": ["anyOf": shape], "minItems": spec.shape.count, "maxItems": spec.shape.count]
        ]
        if withData {
            properties["data"] = ["type": "array", "description": "row-major, flat or nested", "items": ["anyOf": [element, ["type": "array"]]]]
            properties["parameters"] = ["type": "object", "properties": ["binary_data_size": ["type": "integer"]]]
        }
        var schema: [String: Any] = ["type": "object", "required": ["name", "datatype", "shape"], "properties": properties]
        if let description = spec.description { schema["description"] = description }
        return schema
    }
}
