/// The pages' one HTML document, with its CSS and JavaScript inline: no CDN, no fonts, no
/// build step. `script` picks the view (`home`: the models served; `model`: one model's page).
/// Everything shown comes from `/ui/api/…`, `/v2/models/{m}/infer` and `/metrics`, sent with the
/// bearer token the visitor typed (kept in sessionStorage) when the server asks for one.
enum PageAssets {
    static func page(title: String, script: String) -> String {
        """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escaped(title))</title>
        <style>\(css)</style>
        </head>
        <body data-view="\(script)">
        <header><a href="/" class="brand">vessel</a><span id="crumb"></span>
        <form id="token-form" hidden><label>Bearer token <input id="token" type="password" autocomplete="off"></label><button>Use</button></form></header>
        <main id="main"><p class="muted">Loading…</p></main>
        <script>\(javascript)</script>
        </body>
        </html>
        """
    }

    /// Text for HTML: the few characters that could end it.
    static func escaped(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static let css = """
        :root{--fg:#1b1f24;--muted:#5b6470;--line:#d8dde3;--bg:#fff;--card:#f6f8fa;--accent:#0b63ce;--ok:#1a7f37;--bad:#c62828}
        @media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9aa4ae;--line:#30363d;--bg:#0d1117;--card:#161b22;--accent:#58a6ff;--ok:#3fb950;--bad:#f85149}}
        *{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
        header{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line)}
        .brand{font-weight:700;color:var(--fg);text-decoration:none}#crumb{color:var(--muted)}#token-form{margin-left:auto}
        main{max-width:72rem;margin:0 auto;padding:1rem}h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
        .muted{color:var(--muted)}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem}
        .card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem}
        table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
        code,pre,textarea{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{overflow:auto;background:var(--card);padding:.6rem;border-radius:6px;margin:.3rem 0}
        textarea,input[type=text],input[type=password]{width:100%;padding:.4rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
        button{font:inherit;padding:.4rem .9rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
        button.secondary{background:transparent;color:var(--accent)}button:focus-visible,a:focus-visible,textarea:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
        .badge{display:inline-block;padding:0 .5rem;border-radius:99px;font-size:.85em;border:1px solid currentColor}.ready{color:var(--ok)}.failed,.unavailable{color:var(--bad)}.loading{color:var(--muted)}
        .drop{border:2px dashed var(--line);border-radius:8px;padding:1rem;text-align:center}.drop.over{border-color:var(--accent)}
        .drop img,.result canvas{max-width:100%;max-height:16rem;display:block;margin:.5rem auto 0}
        .bar{display:flex;align-items:center;gap:.5rem;margin:.15rem 0}.bar span:first-child{min-width:8rem}.bar .fill{height:.8rem;background:var(--accent);border-radius:3px}
        .field{margin:.6rem 0}.field label{display:block;font-weight:600}.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
        .error{color:var(--bad);white-space:pre-wrap}.card{min-width:0;overflow-wrap:anywhere}pre{white-space:pre-wrap;word-break:break-all}.stats{display:flex;flex-wrap:wrap;gap:1.5rem}.stats b{display:block;font-size:1.2rem}
        """

    static let javascript = #"""
        "use strict";
        const $ = (s, r = document) => r.querySelector(s);
        const el = (tag, attrs = {}, ...kids) => { const e = document.createElement(tag); for (const [k, v] of Object.entries(attrs)) { if (k === "text") e.textContent = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v); } for (const k of kids) if (k != null) e.append(k); return e; };
        // A token in the fragment (`#token=…`, never sent to the server) is kept for the session and
        // taken out of the address bar.
        if (location.hash.startsWith("#token=")) { sessionStorage.setItem("vessel-token", decodeURIComponent(location.hash.slice(7))); history.replaceState(null, "", location.pathname + location.search); }
        const token = () => sessionStorage.getItem("vessel-token") || "";
        async function api(path, options = {}) {
          options.headers = Object.assign({}, options.headers || {}, token() ? { Authorization: "Bearer " + token() } : {});
          const response = await fetch(path, options);
          if (response.status === 401) { $("#token-form").hidden = false; throw new Error("This server needs its bearer token: type it above."); }
          return response;
        }
        $("#token-form").addEventListener("submit", e => { e.preventDefault(); sessionStorage.setItem("vessel-token", $("#token").value.trim()); location.reload(); });
        if (token()) $("#token-form").hidden = false, $("#token").value = token();
        const main = $("#main");
        const fail = error => { main.replaceChildren(el("p", { class: "error", "data-testid": "error", text: String(error.message || error) })); };
        const shape = s => "[" + s.map(d => d < 0 ? "n" : d).join(", ") + "]";

        async function home() {
          const body = await (await api("/ui/api/models")).json();
          const rows = body.models.map(m => el("tr", {}, el("td", {}, el("a", { href: "/ui/models/" + encodeURIComponent(m.name) }, m.name)),
            el("td", { text: m.version || "" }), el("td", {}, el("span", { class: "badge " + m.state, text: m.state })),
            el("td", { text: (m.format || "") + (m.platform ? " · " + m.platform : "") }), el("td", {}, el("code", { text: (m.digest || "").slice(0, 19) })), el("td", { class: "muted", text: m.signature })));
          main.replaceChildren(el("h1", { text: "Models" }), el("table", { "data-testid": "models" },
            el("thead", {}, el("tr", {}, ...["name", "version", "state", "format · backend", "digest", "signature"].map(t => el("th", { text: t })))), el("tbody", {}, ...rows)));
        }

        const b64 = buffer => { let s = ""; const bytes = new Uint8Array(buffer); for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000)); return btoa(s); };

        async function modelView() {
          const name = decodeURIComponent(location.pathname.split("/").pop());
          $("#crumb").textContent = "/ " + name;
          const c = await (await api("/ui/api/models/" + encodeURIComponent(name))).json();
          if (c.error) throw new Error(c.error);
          const values = {};
          const form = el("form", { "data-testid": "form" });
          const imagePreview = {}, loaders = {};
          for (const input of c.served.inputs) {
            const field = el("div", { class: "field" }, el("label", { for: "in-" + input.name, text: input.name + " " }),
              el("span", { class: "muted", text: input.datatype + " " + shape(input.shape) + (input.description ? " — " + input.description : "") }));
            if (input.kind === "image") {
              const file = el("input", { type: "file", accept: "image/*", id: "in-" + input.name, "aria-label": input.name });
              const preview = el("img", { alt: "" }); preview.hidden = true; imagePreview[input.name] = preview;
              const drop = el("div", { class: "drop" }, "Drop an image here, or ", file, preview);
              const take = f => f.arrayBuffer().then(buf => { values[input.name] = ["data:" + (f.type || "application/octet-stream") + ";base64," + b64(buf)]; preview.src = values[input.name][0]; preview.hidden = false; });
              loaders[input.name] = take;
              file.addEventListener("change", () => file.files[0] && take(file.files[0]));
              drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
              drop.addEventListener("dragleave", () => drop.classList.remove("over"));
              drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); if (e.dataTransfer.files[0]) take(e.dataTransfer.files[0]); });
              field.append(drop);
            } else {
              const area = el("textarea", { id: "in-" + input.name, rows: input.kind === "text" ? 3 : 4,
                placeholder: input.kind === "text" ? "One text per line" : "JSON, shape " + shape(input.shape) });
              area.addEventListener("input", () => { delete values[input.name]; });
              field.append(area);
            }
            form.append(field);
          }
          const run = el("button", { type: "submit", text: "Run" });
          form.append(el("div", { class: "row" }, run, ...c.examples.map(x => el("button", { type: "button", class: "secondary", "data-example": x.name, text: "Example: " + x.name, onclick: () => { fill(x); submit(); } }))));
          const result = el("div", { class: "result", "data-testid": "result", "aria-live": "polite" });
          const snippet = el("pre", { "data-testid": "snippet" });

          function fill(example) {
            for (const input of c.served.inputs) {
              const t = example.inputs[input.name]; if (!t) continue;
              if (input.kind === "image") { values[input.name] = t.data; imagePreview[input.name].src = t.data[0]; imagePreview[input.name].hidden = false; }
              else if (input.kind === "text") { $("#in-" + CSS.escape(input.name)).value = t.data.join("\n"); delete values[input.name]; }
              else { $("#in-" + CSS.escape(input.name)).value = JSON.stringify(t.data); values[input.name] = t; }
            }
          }
          function request() {
            const inputs = c.served.inputs.map(input => {
              if (input.kind === "image") { const data = values[input.name]; if (!data) throw new Error("Choose an image for " + input.name); return { name: input.name, datatype: "BYTES", shape: [data.length], data }; }
              const text = $("#in-" + CSS.escape(input.name)).value;
              if (input.kind === "text") { const data = text.split("\n").filter(l => l.trim() !== ""); if (!data.length) throw new Error("Type some text for " + input.name); return { name: input.name, datatype: "BYTES", shape: [data.length], data }; }
              if (values[input.name]) return { name: input.name, datatype: input.datatype, shape: values[input.name].shape, data: values[input.name].data };
              let parsed; try { parsed = JSON.parse(text); } catch { throw new Error(input.name + " is not JSON"); }
              const dims = []; let probe = parsed; while (Array.isArray(probe)) { dims.push(probe.length); probe = probe[0]; }
              return { name: input.name, datatype: input.datatype, shape: dims, data: parsed.flat(Infinity) };
            });
            return { inputs };
          }
          async function submit(event) {
            if (event) event.preventDefault();
            let body; try { body = request(); } catch (e) { result.replaceChildren(el("p", { class: "error", text: e.message })); return; }
            const origin = location.origin, path = "/v2/models/" + encodeURIComponent(name) + "/infer";
            const json = JSON.stringify(body);
            const numpyType = { FP32: "np.float32", FP64: "np.float64", FP16: "np.float16", INT64: "np.int64", INT32: "np.int32", INT16: "np.int16", INT8: "np.int8", UINT8: "np.uint8", BOOL: "np.bool_", BYTES: "object" };
            const literal = v => { const t = JSON.stringify(v); return t.length > 300 ? t.slice(0, 300) + "…  # shortened here" : t; };
            snippet.textContent = "curl -s " + origin + path + (token() ? " -H 'Authorization: Bearer $TOKEN'" : "") + " -H 'Content-Type: application/json' -d '" + (json.length > 600 ? json.slice(0, 600) + "…" : json) + "'\n\n" +
              "# Python: pip install 'tritonclient[http]' numpy\nimport numpy as np\nimport tritonclient.http as http\n" +
              "client = http.InferenceServerClient(\"" + location.host + "\")\ninputs = []\n" +
              body.inputs.map(i => "x = http.InferInput(" + JSON.stringify(i.name) + ", " + JSON.stringify(i.shape) + ", " + JSON.stringify(i.datatype) + ")\n" +
                "x.set_data_from_numpy(np.array(" + literal(i.data) + ", dtype=" + (numpyType[i.datatype] || "np.float32") + ").reshape(" + JSON.stringify(i.shape) + "))\ninputs.append(x)\n").join("") +
              "result = client.infer(" + JSON.stringify(name) + ", inputs" + (token() ? ", headers={\"Authorization\": \"Bearer \" + TOKEN}" : "") + ")\n" +
              "print({o[\"name\"]: result.as_numpy(o[\"name\"]) for o in result.get_response()[\"outputs\"]})";
            run.disabled = true;
            const started = performance.now();
            try {
              const response = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: json });
              const answer = await response.json();
              const ms = performance.now() - started;
              const meta = el("p", { class: "muted", "data-testid": "meta", text: "HTTP " + response.status + " · " + ms.toFixed(1) + " ms · request " + (response.headers.get("X-Request-ID") || "") });
              if (!response.ok) { result.replaceChildren(meta, el("p", { class: "error", "data-testid": "error", text: answer.error || JSON.stringify(answer) })); return; }
              result.replaceChildren(meta, ...render(answer.outputs, body), el("details", {}, el("summary", { text: "Raw JSON" }), el("pre", { text: JSON.stringify(answer, null, 1) })));
            } catch (e) { result.replaceChildren(el("p", { class: "error", text: e.message })); } finally { run.disabled = false; }
          }
          form.addEventListener("submit", submit);

          function render(outputs, body) {
            const byName = Object.fromEntries(outputs.map(o => [o.name, o]));
            const shown = new Set(), parts = [];
            for (const o of outputs) {
              if (shown.has(o.name)) continue;
              const scores = byName[o.name + "_scores"], classes = byName[o.name + "_classes"], count = byName[o.name + "_count"];
              if (classes && count && o.shape.length === 3) {  // detections
                [o, scores, classes, count].forEach(t => shown.add(t.name));
                parts.push(detections(o, scores, classes, count, body)); continue;
              }
              if (scores && o.shape.length === 2) {  // top-k with scores
                shown.add(o.name); shown.add(scores.name);
                const labels = outputs.find(l => l.datatype === "BYTES" && JSON.stringify(l.shape) === JSON.stringify(o.shape) && !shown.has(l.name));
                if (labels) shown.add(labels.name);
                const k = o.shape[1], box = el("div", { class: "card", "data-testid": "output-" + o.name }, el("h3", { text: o.name }));
                for (let i = 0; i < k; i++) { const s = scores.data[i], label = labels ? labels.data[i] : String(o.data[i]);
                  box.append(el("div", { class: "bar" }, el("span", { text: label }), el("span", { class: "fill", style: "width:" + Math.max(2, 200 * Math.min(1, Math.abs(s))) + "px" }), el("span", { text: Number(s).toFixed(4) }))); }
                parts.push(box); continue;
              }
              shown.add(o.name);
              const box = el("div", { class: "card", "data-testid": "output-" + o.name }, el("h3", {}, o.name + " ", el("span", { class: "muted", text: o.datatype + " " + shape(o.shape) })));
              if (o.datatype === "BYTES") box.append(el("p", { class: "answer", text: o.data.join(", ") }));
              else if (o.shape.length === 2 && o.shape[1] > 16) {  // vectors (embeddings)
                for (let r = 0; r < o.shape[0]; r++) { const v = o.data.slice(r * o.shape[1], (r + 1) * o.shape[1]);
                  const norm = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
                  box.append(el("p", { class: "answer", text: "[" + v.slice(0, 6).map(x => x.toFixed(4)).join(", ") + ", …] · " + o.shape[1] + " values · norm " + norm.toFixed(4) })); }
              } else box.append(el("p", { class: "answer", text: JSON.stringify(o.data.length > 64 ? o.data.slice(0, 64).concat(["…"]) : o.data) }));
              parts.push(box);
            }
            return parts;
          }
          function detections(boxes, scores, classes, count, body) {
            const card = el("div", { class: "card", "data-testid": "output-" + boxes.name }, el("h3", { text: boxes.name + ": " + count.data[0] + " found" }));
            const image = body.inputs.find(i => i.datatype === "BYTES" && String(i.data[0]).startsWith("data:image"));
            if (image) { const canvas = el("canvas"); const img = new Image(); img.onload = () => { canvas.width = img.width; canvas.height = img.height; const g = canvas.getContext("2d"); g.drawImage(img, 0, 0); g.lineWidth = 2; g.strokeStyle = "#e53935"; g.font = "14px sans-serif"; g.fillStyle = "#e53935";
              for (let i = 0; i < count.data[0]; i++) { const [x1, y1, x2, y2] = boxes.data.slice(i * 4, i * 4 + 4); g.strokeRect(x1, y1, x2 - x1, y2 - y1); g.fillText(classes.data[i] + " " + Number(scores.data[i]).toFixed(2), x1 + 2, y1 + 14); } }; img.src = image.data[0]; card.append(canvas); }
            return card;
          }

          const stats = el("div", { class: "stats", "data-testid": "health" });
          async function health() {
            try {
              const text = await (await api("/metrics")).text();
              const label = 'model="' + name + '"';
              const lines = text.split("\n").filter(l => l.includes(label));
              const sum = (metric, filter = () => true) => lines.filter(l => l.startsWith(metric + "{") && filter(l)).reduce((a, l) => a + Number(l.split(" ").pop()), 0);
              const requests = sum("vessel_inference_requests_total"), errors = sum("vessel_inference_requests_total", l => !/status="2/.test(l));
              const buckets = lines.filter(l => l.startsWith("vessel_inference_total_duration_seconds_bucket")).map(l => [l.match(/le="([^"]+)"/)[1], Number(l.split(" ").pop())]);
              const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
              const quantile = q => { for (const [le, n] of buckets) if (total && n >= q * total) return le === "+Inf" ? "> 10 s" : "≤ " + (Number(le) * 1000) + " ms"; return "–"; };
              stats.replaceChildren(...[["requests", requests], ["errors", errors], ["p50", quantile(0.5)], ["p99", quantile(0.99)], ["in flight", sum("vessel_inference_in_flight_requests")], ["queued", sum("vessel_inference_queued_requests")]]
                .map(([k, v]) => el("div", {}, el("span", { class: "muted", text: k }), el("b", { text: String(v) }))));
            } catch (e) { stats.replaceChildren(el("span", { class: "muted", text: "metrics unavailable: " + e.message })); }
          }

          const signatureTable = (title, sig) => el("div", { class: "card" }, el("h3", { text: title }), el("table", {}, el("tbody", {},
            ...sig.inputs.map(t => el("tr", {}, el("td", { text: "in" }), el("td", {}, el("code", { text: t.name })), el("td", { text: t.datatype + " " + shape(t.shape) }), el("td", { class: "muted", text: t.description || "" }))),
            ...sig.outputs.map(t => el("tr", {}, el("td", { text: "out" }), el("td", {}, el("code", { text: t.name })), el("td", { text: t.datatype + " " + shape(t.shape) }), el("td", { class: "muted", text: t.description || "" }))))));
          const steps = (title, list) => el("div", { class: "card" }, el("h3", { text: title }), list.length ? el("ol", {}, ...list.map(s => el("li", {}, el("code", { text: s.type }), " " + JSON.stringify(s.parameters)))) : el("p", { class: "muted", text: "none" }));
          main.replaceChildren(
            el("h1", {}, c.name + " ", el("span", { class: "muted", text: c.version })),
            el("p", {}, el("span", { class: "badge ready", "data-testid": "state", text: "ready" }), " " + (c.description || ""), " ", el("span", { class: "muted", text: c.format + " · " + c.platform + (c.digest ? " · " + c.digest.slice(0, 19) : "") + (c.license ? " · " + c.license : "") }), " ", el("span", { class: "muted", "data-testid": "signature", text: "· signature: " + c.signature })),
            stats,
            el("h2", { text: "Try it" }), form, result,
            el("h2", { text: "The same request from code" }), snippet,
            el("h2", { text: "Contract" }),
            el("div", { class: "grid" }, signatureTable("What clients send and get", c.served), signatureTable("The model's own graph (parameters.raw)", c.model),
              steps("Preprocess", c.preprocess), steps("Postprocess", c.postprocess),
              el("div", { class: "card" }, el("h3", { text: "Files" }), el("ul", {}, ...c.files.map(f => el("li", {}, el("code", { text: f.path }), " ", el("span", { class: "muted", text: f.role + (f.sha256 ? " · sha256:" + f.sha256.slice(0, 16) + "…" : "") }))))),
              el("div", { class: "card" }, el("h3", { text: "Examples" }), ...c.examples.map(x => el("details", {}, el("summary", { text: x.name }), el("pre", { text: JSON.stringify(x.outputs).slice(0, 2000) }))))));
          health(); setInterval(health, 2000);
          const params = new URLSearchParams(location.search), wanted = params.get("example");
          if (wanted) { const x = c.examples.find(e => e.name === wanted); if (x) { fill(x); if (params.get("run") !== "0") submit(); } }
          // `?load.NAME=URL`: the file at URL put into image input NAME as a picked file would be (links to a prepared request).
          for (const [key, url] of params) if (key.startsWith("load.") && loaders[key.slice(5)]) {
            const blob = await (await fetch(url)).blob();
            await loaders[key.slice(5)](blob);
            if (params.get("run") !== "0") submit();
          }
        }
        (document.body.dataset.view === "home" ? home() : modelView()).catch(fail);
        """#
}
