/** The widget's stylesheet; it lives in the shadow root, so nothing leaks in or out. */
export const CSS = `
:host{all:initial;position:fixed;right:20px;bottom:20px;z-index:2147483000;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;--a:#2457d6;--f:#fff}
:host([data-left]){right:auto;left:20px}
*{box-sizing:border-box;font:inherit;color:inherit}
[hidden]{display:none!important}
button{cursor:pointer;border:0;border-radius:8px;padding:6px 12px;background:#eef2ff;color:#1e3a8a}
button:hover{background:#e0e7ff}
button:disabled{opacity:.55;cursor:default}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
.bubble{width:56px;height:56px;border-radius:50%;background:var(--a);color:var(--f);box-shadow:0 6px 20px rgba(0,0,0,.25);display:grid;place-items:center;padding:0;overflow:hidden}
.bubble:hover,form button:hover{background:var(--a);filter:brightness(.9)}
.bubble svg{width:28px;height:28px;fill:currentColor}
.avatar{width:28px;height:28px;border-radius:50%;object-fit:cover}
.bubble .avatar{width:100%;height:100%}
.panel{position:absolute;right:0;left:auto;bottom:72px;width:min(370px,calc(100vw - 40px));height:min(540px,calc(100vh - 120px));display:flex;flex-direction:column;background:#fff;border-radius:14px;box-shadow:0 12px 40px rgba(0,0,0,.28);overflow:hidden}
:host([data-left]) .panel{right:auto;left:0}
header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--a);color:var(--f)}
h2{flex:1;margin:0;font-size:15px;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
header button{background:var(--a);color:inherit;border:1px solid}
header button:hover{background:var(--a);filter:brightness(.9)}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:8px;background:#f8fafc}
.msg{max-width:85%;padding:8px 12px;border-radius:12px;overflow-wrap:anywhere}
.assistant{align-self:flex-start;background:#fff;border:1px solid #e5e7eb}
.user{align-self:flex-end;background:var(--a);color:var(--f);white-space:pre-wrap}
.operator{align-self:flex-start;background:#fff;border:1px solid var(--a);white-space:pre-wrap}
.who{font-size:12px;font-weight:600;margin-bottom:2px}
.system{align-self:center;max-width:100%;padding:2px 8px;font-size:12px;color:#475569}
.msg[aria-busy=true] .body:empty::after{content:"…"}
.body>*{margin:0 0 6px}.body>:last-child{margin-bottom:0}
ul,ol{padding-left:20px}li>ul,li>ol{margin:0}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:92%;background:#f1f5f9;border-radius:4px;padding:0 3px}
pre{background:#f1f5f9;border-radius:6px;padding:8px;overflow-x:auto}pre code{padding:0}
strong{font-weight:700}em{font-style:italic}
a{color:#1d4ed8;text-decoration:underline}
hr{border:0;border-top:1px solid #e5e7eb}
.failed{border-color:#fca5a5;background:#fef2f2}
.sources{margin:6px 0 0;padding:6px 0 0 16px;border-top:1px solid #e5e7eb;font-size:12px}
.check{padding:8px 14px;display:flex;justify-content:center}
.status{padding:0 14px;font-size:13px}
.status:not(:empty){padding:8px 14px;background:#fffbeb;color:#92400e;border-top:1px solid #fde68a}
.status.error{background:#fef2f2;color:#991b1b;border-color:#fecaca}
form,.step{display:flex;gap:8px;padding:10px;border-top:1px solid #e5e7eb;background:#fff}
.step{flex-direction:column;align-items:stretch;text-align:center}
.row{display:flex;gap:8px;justify-content:center}
textarea{flex:1;resize:none;border:1px solid #cbd5e1;border-radius:8px;padding:8px;min-height:38px;max-height:120px;background:#fff}
form button{background:var(--a);color:var(--f)}
.stars button{min-width:40px;font-weight:600}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (prefers-reduced-motion:no-preference){.panel{animation:in .15s ease-out}@keyframes in{from{opacity:0;transform:translateY(8px)}}}
`;
