(function(){
"use strict";
const CFG = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/&/g,"&amp;").replace(/</g,"&lt;").replace(/>/g,"&gt;");
function usd(v){ if(v===null||v===undefined) return "-"; const a=Math.abs(v);
  if(a>=100) return "$"+v.toLocaleString("en-US",{minimumFractionDigits:2,maximumFractionDigits:2});
  if(a>=1) return "$"+v.toFixed(2); if(a===0) return "$0"; return "$"+Number(v.toPrecision(3)); }
const pct = (v, d) => (v===null||v===undefined) ? "-" : (v*100).toFixed(d===undefined?1:d)+"%";
const num = (v) => (v===null||v===undefined) ? "-" : Number(v).toLocaleString("en-US");
function el(tag, text, cls){ const e=document.createElement(tag); if(text!==undefined&&text!==null) e.textContent=String(text); if(cls) e.className=cls; return e; }
function table(id, header, rows, keys){
  const box=$(id); box.replaceChildren();
  if(!rows.length){ box.appendChild(el("div","nothing in this window","empty")); return; }
  const t=el("table"), head=el("tr");
  header.forEach((h,i)=>head.appendChild(el("th",h,(keys||1)>i?"k":"")));
  const thead=el("thead"); thead.appendChild(head); t.appendChild(thead);
  const body=el("tbody");
  rows.forEach(r=>{ const tr=el("tr"); r.forEach((c,i)=>{ const cls=(c&&c.msg)?"msg":((keys||1)>i?"k":""); tr.appendChild(el("td",(c&&c.msg)?c.msg:c,cls)); }); body.appendChild(tr); });
  t.appendChild(body); const wrap=el("div",null,"scroll"); wrap.appendChild(t); box.appendChild(wrap);
}
function card(label, value){ const c=el("div",null,"card"); c.appendChild(el("div",label,"l")); c.appendChild(el("div",value,"v")); return c; }
const LAYOUT = {margin:{l:48,r:12,t:8,b:40},legend:{orientation:"h",y:-0.2,font:{size:11}},
  font:{family:"system-ui,sans-serif",size:11},paper_bgcolor:"rgba(0,0,0,0)",plot_bgcolor:"rgba(0,0,0,0)",
  xaxis:{automargin:true},yaxis:{automargin:true,rangemode:"tozero"}};
const PLOT_CFG = {displayModeBar:false,responsive:true,staticPlot:false};
function layout(extra){ return Object.assign({}, LAYOUT, extra||{}); }
const charts = [];
function draw(id, traces, extra){
  const node=$(id); if(!window.Plotly){ node.replaceChildren(el("div",CFG.missing,"empty")); return; }
  traces.forEach(t=>{ t.meta = t.meta===undefined ? t.name : t.meta; t.name = esc(t.name===undefined?"":t.name); });
  // sized from the panel (a phone's width too), not plotly's 700 px default
  const size = {width: node.clientWidth || undefined, height: node.clientHeight || undefined};
  charts.push(Plotly.react(node, traces, Object.assign(layout(extra), size), PLOT_CFG).then(gd=>[id, gd]));
}
function stacked(id, block, time, kind){
  const traces = block.names.map((n,i)=>(kind==="area"
    ? {type:"scatter",mode:"lines",stackgroup:"one",name:n,x:time,y:block.series[i]}
    : {type:"bar",name:n,x:time,y:block.series[i]}));
  draw(id, traces, {barmode:"stack",yaxis:{automargin:true,rangemode:"tozero",tickprefix:"$"}});
}
function render(d){
  if(d.empty){ $("meta").textContent="no records yet in "+d.source; return; }
  $("title").textContent = d.title;
  const span = d.time ? " · "+d.since+" to "+d.until+" (per "+d.bucket+")" : "";
  $("meta").textContent = d.source+span+(d.filters?" · filters "+d.filters:"")+" · "+num(d.totals.records)+" records · generated "+d.generated_at;
  const tot=d.totals, fc=(d.forecast||[])[0];
  $("cards").replaceChildren(card("cost",usd(tot.cost_usd)), card("requests",num(tot.requests)),
    card("saved",usd(tot.saved_usd)+" ("+pct(tot.savings_rate)+")"), card("cache hit rate",pct(tot.cache_hit_rate)),
    card("month-end forecast", fc ? usd(fc.forecast_usd)+(fc.low_usd!==null?" ("+usd(fc.low_usd)+"-"+usd(fc.high_usd)+")":"") : "-"),
    card("alerts", num((d.alerts||[]).length)));
  charts.length=0;
  $("charts").hidden = !d.time;
  if(d.time) timeCharts(d);
  tables(d);
  Promise.all(charts).then(done=>{
    const plotted={};
    done.forEach(([id, gd])=>{ plotted[id]=gd.data.map(t=>({name:t.meta, x:t.x, y:t.y})); });
    $("plotted").textContent=JSON.stringify(plotted);
    document.body.setAttribute("data-drawn", String(done.length));
  });
  if(CFG.live) $("status").textContent="live · refreshing every "+CFG.refresh_s+" s · updated "+new Date().toISOString().slice(11,19)+" UTC";
}
function timeCharts(d){
  stacked("cost_feature", d.cost_by.feature, d.time, "bar");
  stacked("cost_tenant", d.cost_by.tenant, d.time, "bar");
  stacked("cost_model", d.cost_by.model, d.time, "bar");
  stacked("savings", d.savings_by_layer, d.time, "area");
  const c=d.cache, cacheTraces=[{type:"scatter",mode:"lines+markers",name:"hit rate",x:d.time,y:c.hit_rate,connectgaps:false},
    {type:"scatter",mode:"lines+markers",name:"live false-hit estimate",x:d.time,y:c.false_hit_estimate,yaxis:"y2",connectgaps:false}];
  if(c.delta!==null) cacheTraces.push({type:"scatter",mode:"lines",name:"delta",x:[d.time[0],d.time[d.time.length-1]],y:[c.delta,c.delta],yaxis:"y2",line:{dash:"dash"}});
  draw("cache", cacheTraces, {margin:{l:56,r:64,t:8,b:40},yaxis:{tickformat:".0%",rangemode:"tozero",title:{text:"hit rate"}},
    yaxis2:{overlaying:"y",side:"right",tickformat:".1%",rangemode:"tozero",title:{text:"false hits / lookup"}}});
  const arms=(d.arms||[]).filter(a=>a.cost_per_success!==null);
  draw("arms", [{type:"bar",name:"$ per successful task",x:arms.map(a=>esc((a.experiment||"")+" / "+a.arm)),y:arms.map(a=>a.cost_per_success),
    meta:arms.map(a=>(a.experiment||"")+" / "+a.arm),
    error_y:{type:"data",symmetric:false,array:arms.map(a=>a.cost_per_success_ci?a.cost_per_success_ci[1]-a.cost_per_success:0),
      arrayminus:arms.map(a=>a.cost_per_success_ci?a.cost_per_success-a.cost_per_success_ci[0]:0)}}],
    {xaxis:{type:"category",automargin:true},yaxis:{automargin:true,rangemode:"tozero",tickprefix:"$"},showlegend:false});
  const fcs=(d.forecast||[]);
  draw("forecast", [{type:"bar",name:"spent so far",y:fcs.map(f=>esc(f.key===null?"(none)":f.key)),x:fcs.map(f=>f.spent_usd),orientation:"h",meta:"spent so far"},
    {type:"bar",name:"forecast to month end",y:fcs.map(f=>esc(f.key===null?"(none)":f.key)),x:fcs.map(f=>f.forecast_usd-f.spent_usd),orientation:"h",
     meta:"forecast to month end",error_x:{type:"data",symmetric:false,array:fcs.map(f=>f.high_usd===null?0:f.high_usd-f.forecast_usd),
       arrayminus:fcs.map(f=>f.low_usd===null?0:f.forecast_usd-f.low_usd)}}],
    {barmode:"stack",xaxis:{tickprefix:"$",automargin:true},yaxis:{automargin:true,autorange:"reversed"}});
}
function tables(d){
  const fcs=(d.forecast||[]);
  table("alerts", ["time","rule","subject","message"], (d.alerts||[]).slice().reverse().map(a=>[a.at_iso,a.rule,
    Object.entries(a.subject).map(([k,v])=>k+"="+(v===null?"(none)":v)).join(", ")||"all",{msg:a.message}]), 3);
  table("top", ["request","time","feature","tenant","model","records","tokens in","tokens out","cost"], (d.top_requests||[]).map(r=>[
    r.request_id,r.time,r.feature===null?"(none)":r.feature,r.tenant===null?"(none)":r.tenant,r.model,num(r.records),num(r.input_tokens),num(r.output_tokens),usd(r.cost_usd)]), 5);
  table("forecast_table", ["feature","month","spent","daily mean","days used","days left","forecast","95% interval"], fcs.map(f=>[
    f.key===null?"(none)":f.key,f.month,usd(f.spent_usd),usd(f.daily_mean_usd),num(f.days_used),f.remaining_days.toFixed(1),usd(f.forecast_usd),
    f.low_usd===null?"-":usd(f.low_usd)+" - "+usd(f.high_usd)]), 2);
  table("arms_table", ["experiment","arm","tasks","success","$/successful task","95% CI","vs control","verdict"], (d.arms||[]).map(a=>[
    a.experiment===null?"(none)":a.experiment,a.arm,num(a.successes+a.failures),pct(a.success_rate)+" ["+pct(a.success_rate_ci[0])+", "+pct(a.success_rate_ci[1])+"]",
    usd(a.cost_per_success),a.cost_per_success_ci?usd(a.cost_per_success_ci[0])+" - "+usd(a.cost_per_success_ci[1]):"-",
    a.arm===a.control?"":(a.success_rate_diff*100).toFixed(1)+" pts",{msg:a.verdict}]), 2);
  table("tasks_table", ["feature","tasks","ok","failed","open","success","$/task","$/successful task","failed $","open $"], ((d.tasks||{}).groups||[]).map(g=>[
    g.feature===null?"(none)":g.feature,num(g.tasks),num(g.successes),num(g.failures),num(g.open),pct(g.success_rate),usd(g.cost_per_task),
    usd(g.cost_per_success),usd(g.failed_cost_usd),usd(g.open_cost_usd)]), 1);
  const reps=$("reports"); reps.replaceChildren();
  (d.reports||[]).forEach((r,i)=>{ reps.appendChild(el("h2","By "+r.by.join(" x ")));
    const chart=el("div",null,"chart"); chart.id="report_chart_"+i; reps.appendChild(chart);
    const top=r.groups.slice(0,15), names=top.map(g=>r.by.map(k=>g[k]===null?"(none)":g[k]).join(" / "));
    draw(chart.id, [{type:"bar",orientation:"h",name:"cost",meta:"cost",y:names.map(esc),x:top.map(g=>g.cost_usd)},
      {type:"bar",orientation:"h",name:"saved by costkit",meta:"saved by costkit",y:names.map(esc),x:top.map(g=>g.saved_usd)}],
      {barmode:"group",xaxis:{tickprefix:"$",automargin:true},yaxis:{automargin:true,autorange:"reversed",type:"category"}});
    const box=el("div"); box.id="report_"+i; reps.appendChild(box);
    table(box.id, [...r.by,"requests","attempts","hit rate","in tokens","out tokens","cost","share","$/request","saved","errors","unpriced"],
      r.groups.map(g=>[...r.by.map(k=>g[k]===null?"(none)":g[k]),num(g.requests),num(g.attempts),pct(g.cache_hit_rate),num(g.input_tokens),
        num(g.output_tokens),usd(g.cost_usd),pct(g.share),usd(g.cost_per_request),usd(g.saved_usd),num(g.errors),num(g.unpriced)]), r.by.length); });
}
function load(){
  fetch("data.json",{cache:"no-store"}).then(r=>{ if(!r.ok) throw new Error(r.status+" "+r.statusText); return r.json(); })
    .then(render).catch(e=>{ $("status").textContent="could not refresh: "+e.message; });
}
if(!window.Plotly){ const b=$("banner"); b.textContent=CFG.missing; b.hidden=false; }
if(CFG.live){ load(); setInterval(load, CFG.refresh_s*1000); }
else render(JSON.parse($("data").textContent));
})();
