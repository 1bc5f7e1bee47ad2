//! The report's one style sheet, inline: nothing may load (docs/DESIGN.md, "The
//! investigator's report").

pub(super) const CSS: &str = r#"
:root{--ink:#1b2230;--muted:#5c6577;--line:#e1e5ec;--bg:#f3f5f8;--card:#fff;--accent:#2c5a97;--alert:#b8232b;--alertbg:#fcebec}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 "Helvetica Neue",Helvetica,Arial,"Liberation Sans",sans-serif}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
header.top{background:#172132;color:#fff;padding:20px 0 18px}
.wrap{max-width:1180px;margin:0 auto;padding:0 20px}
.kicker{font-size:11.5px;letter-spacing:.09em;text-transform:uppercase;color:#9eb0c9}
h1{font-size:25px;margin:4px 0 4px;font-weight:700}
.sub{color:#c7d1df;margin:2px 0}
.cards{display:flex;gap:10px;margin:16px 0 0;flex-wrap:wrap}
.card{background:#22304a;border-radius:8px;padding:8px 16px;min-width:128px}
.card b{display:block;font-size:23px;color:#fff;font-variant-numeric:tabular-nums}
.card span{font-size:12px;color:#a9b8cd}
.card.hot{background:var(--alert)}
.card.hot span{color:#ffdfe0}
nav.toc{margin:12px 0 0;font-size:13px}
nav.toc a{color:#c7d1df;margin-right:16px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 20px 16px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px}
h2 small,h3 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:8px}
h3{font-size:15px;margin:14px 0 6px}
p.note{color:var(--muted);margin:6px 0 0;font-size:13px}
table{border-collapse:collapse;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;background:#f8f9fb}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.t{white-space:nowrap;font-variant-numeric:tabular-nums}
table.facts th{width:150px;background:none;font-size:13px;color:var(--muted);font-weight:600}
table.facts td,table.facts th{border-bottom:1px solid #f0f2f5}
.id{font-family:"DejaVu Sans Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px;overflow-wrap:anywhere}
.esc{background:#fff0bf;color:#7a4700;border-radius:3px;padding:0 2px;font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace}
.cut{color:var(--muted);font-style:italic;font-family:inherit}
.two{display:grid;grid-template-columns:1fr 1fr;gap:0 28px}
.two>div{min-width:0}
.four{display:grid;grid-template-columns:1fr 1fr;gap:6px 28px}
.four>div{min-width:0}
ul.plain{margin:0;padding:0;list-style:none}
ul.plain li{margin:0 0 2px}
.pill{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;background:#e8edf4;color:#3a4659;margin-right:6px}
.pill.hot{background:var(--alertbg);color:var(--alert)}
article.key{border-top:1px solid var(--line);padding:14px 0 6px}
article.key:first-of-type{border-top:none;padding-top:2px}
article.key h3{margin:6px 0 2px;font-size:15px}
.keymeta{color:var(--muted);margin:0 0 8px}
.keymeta .id{color:var(--ink)}
.chart{display:block;width:100%;height:auto;margin:4px 0 6px}
.chart text{font:12px "Helvetica Neue",Helvetica,Arial,"Liberation Sans",sans-serif;fill:#5c6577}
.chart text.panel{fill:#1b2230;font-weight:600}
.chart .bar{fill:#3b6db0}
.chart .area{fill:#dde7f5}
.chart .sum{fill:none;stroke:#1e3d6b;stroke-width:1.6}
.chart line.threshold{stroke:var(--alert);stroke-width:1.4;stroke-dasharray:6 4}
.chart text.threshold{fill:var(--alert);font-weight:600}
.chart .band{fill:var(--alert);opacity:.08}
.chart circle.alert{fill:var(--alert);stroke:#fff;stroke-width:1.5}
.chart text.alert{fill:var(--alert);font-weight:700}
.chart .grid{stroke:#edf0f4}
.chart .base{stroke:#9aa3b2}
dl.ev{display:grid;grid-template-columns:130px 1fr;gap:3px 12px;margin:4px 0 0}
dl.ev dt{color:var(--muted);font-weight:600;font-size:13px}
dl.ev dd{margin:0;min-width:0}
table.tune td,table.tune th{text-align:right}
table.tune th:first-child,table.tune td:first-child{text-align:left}
table.tune td.cfg{outline:2px solid var(--alert);outline-offset:-2px;background:var(--alertbg)}
table.tune b{font-size:15px}
.wo{display:block;color:var(--muted);font-size:12px}
tr.hot td:first-child{box-shadow:inset 3px 0 0 var(--alert)}
table.fixed{table-layout:fixed}
table.alerts th:nth-child(1){width:34px}
table.alerts th:nth-child(3),table.others th:nth-child(2){width:300px}
table.alerts th:nth-child(4),table.others th:nth-child(3){width:128px}
table.alerts th:nth-child(5){width:70px}
table.alerts th:nth-child(6){width:178px}
table.alerts th:nth-child(7){width:84px}
table.others th:nth-child(4){width:76px}
table.others th:nth-child(5){width:116px}
table.others th:nth-child(6){width:140px}
table.top th:nth-child(n+2){width:70px}
table.groups th:nth-child(2){width:300px}
table.groups th:nth-child(3){width:128px}
table.groups th:nth-child(n+4){width:90px}
article.rule{margin:18px 0 0}
h4{font-size:14px;margin:12px 0 4px}
h4 small{font-weight:400;color:var(--muted);font-size:13px;margin-left:8px}
table.ips th:nth-child(2){width:120px}
footer{color:var(--muted);font-size:12px;max-width:1180px;margin:0 auto;padding:0 20px 30px}
@media print{body{background:#fff}section{break-inside:avoid-page;border-color:#ccc}}
"#;
