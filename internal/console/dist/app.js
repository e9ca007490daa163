var ne,k,Pe,bt,F,Ee,Me,Ie,de,K,q,Oe,fe,me,he,kt,X={},ee=[],xt=/acit|ex(?:s|g|n|p|$)|rph|grid|ows|mnc|ntw|ine[ch]|zoo|^ord|itera/i,oe=Array.isArray;function O(e,t){for(var n in t)e[n]=t[n];return e}function $e(e){e&&e.parentNode&&e.parentNode.removeChild(e)}function ve(e,t,n){var r,s,o,i={};for(o in t)o=="key"?r=t[o]:o=="ref"?s=t[o]:i[o]=t[o];if(arguments.length>2&&(i.children=arguments.length>3?ne.call(arguments,2):n),typeof e=="function"&&e.defaultProps!=null)for(o in e.defaultProps)i[o]===void 0&&(i[o]=e.defaultProps[o]);return Z(e,i,r,s,null)}function Z(e,t,n,r,s){var o={type:e,props:t,key:n,ref:r,__k:null,__:null,__b:0,__e:null,__c:null,constructor:void 0,__v:s??++Pe,__i:-1,__u:0};return s==null&&k.vnode!=null&&k.vnode(o),o}function re(e){return e.children}function Q(e,t){this.props=e,this.context=t}function j(e,t){if(t==null)return e.__?j(e.__,e.__i+1):null;for(var n;t<e.__k.length;t++)if((n=e.__k[t])!=null&&n.__e!=null)return n.__e;return typeof e.type=="function"?j(e):null}function wt(e){if(e.__P&&e.__d){var t=e.__v,n=t.__e,r=[],s=[],o=O({},t);o.__v=t.__v+1,k.vnode&&k.vnode(o),ge(e.__P,o,t,e.__n,e.__P.namespaceURI,32&t.__u?[n]:null,r,n??j(t),!!(32&t.__u),s),o.__v=t.__v,o.__.__k[o.__i]=o,He(r,o,s),t.__e=t.__=null,o.__e!=n&&Re(o)}}function Re(e){if((e=e.__)!=null&&e.__c!=null)return e.__e=e.__c.base=null,e.__k.some(function(t){if(t!=null&&t.__e!=null)return e.__e=e.__c.base=t.__e}),Re(e)}function Le(e){(!e.__d&&(e.__d=!0)&&F.push(e)&&!te.__r++||Ee!=k.debounceRendering)&&((Ee=k.debounceRendering)||Me)(te)}function te(){try{for(var e,t=1;F.length;)F.length>t&&F.sort(Ie),e=F.shift(),t=F.length,wt(e)}finally{F.length=te.__r=0}}function Fe(e,t,n,r,s,o,i,u,c,l,_){var h,a,p,v,m,g,f=r&&r.__k||ee,$=t.length;for(c=St(n,t,f,c,$),h=0;h<$;h++)(p=n.__k[h])!=null&&(a=p.__i!=-1&&f[p.__i]||X,p.__i=h,g=ge(e,p,a,s,o,i,u,c,l,_),v=p.__e,p.ref&&a.ref!=p.ref&&(a.ref&&ye(a.ref,null,p),_.push(p.ref,p.__c||v,p)),m==null&&v!=null&&(m=v),4&p.__u?(c=je(p,c,e),a.__e&&(a.__e=null)):typeof p.type=="function"&&g!==void 0?c=g:v&&(c=v.nextSibling),p.__u&=-7);return n.__e=m,c}function St(e,t,n,r,s){var o,i,u,c,l,_=n.length,h=_,a=0;for(e.__k=new Array(s),o=0;o<s;o++)(i=t[o])!=null&&typeof i!="boolean"&&typeof i!="function"?(typeof i=="string"||typeof i=="number"||typeof i=="bigint"||i.constructor==String?i=e.__k[o]=Z(null,i,null,null,null):oe(i)?i=e.__k[o]=Z(re,{children:i},null,null,null):i.constructor===void 0&&i.__b>0?i=e.__k[o]=Z(i.type,i.props,i.key,i.ref?i.ref:null,i.__v):e.__k[o]=i,c=o+a,i.__=e,i.__b=e.__b+1,u=null,(l=i.__i=Ct(i,n,c,h))!=-1&&(h--,(u=n[l])&&(u.__u|=2)),u==null||u.__v==null?(l==-1&&(s>_?a--:s<_&&a++),typeof i.type!="function"&&(i.__u|=4)):l!=c&&(l==c-1?a--:l==c+1?a++:(l>c?a--:a++,i.__u|=4))):e.__k[o]=null;if(h)for(o=0;o<_;o++)(u=n[o])!=null&&(2&u.__u)==0&&(u.__e==r&&(r=j(u)),Ve(u,u));return r}function je(e,t,n){var r,s;if(typeof e.type=="function"){for(r=e.__k,s=0;r&&s<r.length;s++)r[s]&&(r[s].__=e,t=je(r[s],t,n));return t}e.__e!=t&&(t&&e.type&&!t.parentNode&&(t=j(e)),t=n.insertBefore(e.__e,t||null));do t=t&&t.nextSibling;while(t!=null&&t.nodeType==8);return t}function Ct(e,t,n,r){var s,o,i,u=e.key,c=e.type,l=t[n],_=l!=null&&(2&l.__u)==0;if(l===null&&u==null||_&&u==l.key&&c==l.type)return n;if(r>(_?1:0)){for(s=n-1,o=n+1;s>=0||o<t.length;)if((l=t[i=s>=0?s--:o++])!=null&&(2&l.__u)==0&&u==l.key&&c==l.type)return i}return-1}function Ae(e,t,n){t[0]=="-"?e.setProperty(t,n??""):e[t]=n==null?"":typeof n!="number"||xt.test(t)?n:n+"px"}function G(e,t,n,r,s){var o,i;e:if(t=="style")if(typeof n=="string")e.style.cssText=n;else{if(typeof r=="string"&&(e.style.cssText=r=""),r)for(t in r)n&&t in n||Ae(e.style,t,"");if(n)for(t in n)r&&n[t]==r[t]||Ae(e.style,t,n[t])}else if(t[0]=="o"&&t[1]=="n")o=t!=(t=t.replace(Oe,"$1")),i=t.toLowerCase(),t=i in e||t=="onFocusOut"||t=="onFocusIn"?i.slice(2):t.slice(2),e.l||(e.l={}),e.l[t+o]=n,n?r?n[q]=r[q]:(n[q]=fe,e.addEventListener(t,o?he:me,o)):e.removeEventListener(t,o?he:me,o);else{if(s=="http://www.w3.org/2000/svg")t=t.replace(/xlink(H|:h)/,"h").replace(/sName$/,"s");else if(t!="width"&&t!="height"&&t!="href"&&t!="list"&&t!="form"&&t!="tabIndex"&&t!="download"&&t!="rowSpan"&&t!="colSpan"&&t!="role"&&t!="popover"&&t in e)try{e[t]=n??"";break e}catch{}typeof n=="function"||(n==null||n===!1&&t[4]!="-"?e.removeAttribute(t):e.setAttribute(t,t=="popover"&&n==1?"":n))}}function Ne(e){return function(t){if(this.l){var n=this.l[t.type+e];if(t[K]==null)t[K]=fe++;else if(t[K]<n[q])return;return n(k.event?k.event(t):t)}}}function ge(e,t,n,r,s,o,i,u,c,l){var _,h,a,p,v,m,g,f,$,T,N,I,R,b,E,A,P=t.type;if(t.constructor!==void 0)return null;128&n.__u&&(c=!!(32&n.__u),o=[u=t.__e=n.__e]),(_=k.__b)&&_(t);e:if(typeof P=="function"){h=i.length;try{if($=t.props,T=P.prototype&&P.prototype.render,N=(_=P.contextType)&&r[_.__c],I=_?N?N.props.value:_.__:r,n.__c?f=(a=t.__c=n.__c).__=a.__E:(T?t.__c=a=new P($,I):(t.__c=a=new Q($,I),a.constructor=P,a.render=Et),N&&N.sub(a),a.state||(a.state={}),a.__n=r,p=a.__d=!0,a.__h=[],a._sb=[]),T&&a.__s==null&&(a.__s=a.state),T&&P.getDerivedStateFromProps!=null&&(a.__s==a.state&&(a.__s=O({},a.__s)),O(a.__s,P.getDerivedStateFromProps($,a.__s))),v=a.props,m=a.state,a.__v=t,p)T&&P.getDerivedStateFromProps==null&&a.componentWillMount!=null&&a.componentWillMount(),T&&a.componentDidMount!=null&&a.__h.push(a.componentDidMount);else{if(T&&P.getDerivedStateFromProps==null&&$!==v&&a.componentWillReceiveProps!=null&&a.componentWillReceiveProps($,I),t.__v==n.__v||!a.__e&&a.shouldComponentUpdate!=null&&a.shouldComponentUpdate($,a.__s,I)===!1){t.__v!=n.__v&&(a.props=$,a.state=a.__s,a.__d=!1),t.__e=n.__e,t.__k=n.__k,t.__k.some(function(M){M&&(M.__=t)}),ee.push.apply(a.__h,a._sb),a._sb=[],a.__h.length&&i.push(a),u=j(n);break e}a.componentWillUpdate!=null&&a.componentWillUpdate($,a.__s,I),T&&a.componentDidUpdate!=null&&a.__h.push(function(){a.componentDidUpdate(v,m,g)})}if(a.context=I,a.props=$,a.__P=e,a.__e=!1,R=k.__r,b=0,T)a.state=a.__s,a.__d=!1,R&&R(t),_=a.render(a.props,a.state,a.context),ee.push.apply(a.__h,a._sb),a._sb=[];else do a.__d=!1,R&&R(t),_=a.render(a.props,a.state,a.context),a.state=a.__s;while(a.__d&&++b<25);a.state=a.__s,a.getChildContext!=null&&(r=O(O({},r),a.getChildContext())),T&&!p&&a.getSnapshotBeforeUpdate!=null&&(g=a.getSnapshotBeforeUpdate(v,m)),E=_!=null&&_.type===re&&_.key==null?Ue(_.props.children):_,u=Fe(e,oe(E)?E:[E],t,n,r,s,o,i,u,c,l),a.base=t.__e,t.__u&=-161,a.__h.length&&i.push(a),f&&(a.__E=a.__=null)}catch(M){if(i.length=h,t.__v=null,c||o!=null){if(M.then){for(t.__u|=c?160:128;u&&u.nodeType==8&&u.nextSibling;)u=u.nextSibling;o!=null&&(o[o.indexOf(u)]=null),t.__e=u}else if(o!=null)for(A=o.length;A--;)$e(o[A])}else t.__e=n.__e;t.__k==null&&(t.__k=n.__k||[]),M.then||De(t),k.__e(M,t,n)}}else o==null&&t.__v==n.__v?(t.__k=n.__k,t.__e=n.__e):u=t.__e=Tt(n.__e,t,n,r,s,o,i,c,l);return(_=k.diffed)&&_(t),128&t.__u?void 0:u}function De(e){e&&(e.__c&&(e.__c.__e=!0),e.__k&&e.__k.some(De))}function He(e,t,n){for(var r=0;r<n.length;r++)ye(n[r],n[++r],n[++r]);k.__c&&k.__c(t,e),e.some(function(s){try{e=s.__h,s.__h=[],e.some(function(o){o.call(s)})}catch(o){k.__e(o,s.__v)}})}function Ue(e){return typeof e!="object"||e==null||e.__b>0?e:oe(e)?e.map(Ue):e.constructor!==void 0?null:O({},e)}function Tt(e,t,n,r,s,o,i,u,c){var l,_,h,a,p,v,m,g=n.props||X,f=t.props,$=t.type;if($=="svg"?s="http://www.w3.org/2000/svg":$=="math"?s="http://www.w3.org/1998/Math/MathML":s||(s="http://www.w3.org/1999/xhtml"),o!=null){for(l=0;l<o.length;l++)if((p=o[l])&&"setAttribute"in p==!!$&&($?p.localName==$:p.nodeType==3)){e=p,o[l]=null;break}}if(e==null){if($==null)return document.createTextNode(f);e=document.createElementNS(s,$,f.is&&f),u&&(k.__m&&k.__m(t,o),u=!1),o=null}if($==null)g===f||u&&e.data==f||(e.data=f);else{if(o=$=="textarea"&&f.defaultValue!=null?null:o&&ne.call(e.childNodes),!u&&o!=null)for(g={},l=0;l<e.attributes.length;l++)g[(p=e.attributes[l]).name]=p.value;for(l in g)p=g[l],l=="dangerouslySetInnerHTML"?h=p:l=="children"||l in f||l=="value"&&"defaultValue"in f||l=="checked"&&"defaultChecked"in f||G(e,l,null,p,s);for(l in f)p=f[l],l=="children"?a=p:l=="dangerouslySetInnerHTML"?_=p:l=="value"?v=p:l=="checked"?m=p:u&&typeof p!="function"||g[l]===p||G(e,l,p,g[l],s);if(_)u||h&&(_.__html==h.__html||_.__html==e.innerHTML)||(e.innerHTML=_.__html),t.__k=[];else if(h&&(e.innerHTML=""),Fe(t.type=="template"?e.content:e,oe(a)?a:[a],t,n,r,$=="foreignObject"?"http://www.w3.org/1999/xhtml":s,o,i,o?o[0]:n.__k&&j(n,0),u,c),o!=null)for(l=o.length;l--;)$e(o[l]);u&&$!="textarea"||(l="value",$=="progress"&&v==null?e.removeAttribute("value"):v!=null&&(v!==e[l]||$=="progress"&&!v||$=="option"&&v!=g[l])&&G(e,l,v,g[l],s),l="checked",m!=null&&m!=e[l]&&G(e,l,m,g[l],s))}return e}function ye(e,t,n){try{if(typeof e=="function"){var r=typeof e.__u=="function";r&&e.__u(),r&&t==null||(e.__u=e(t))}else e.current=t}catch(s){k.__e(s,n)}}function Ve(e,t,n){var r,s;if(k.unmount&&k.unmount(e),(r=e.ref)&&(r.current&&r.current!=e.__e||ye(r,null,t)),(r=e.__c)!=null){if(r.componentWillUnmount)try{r.componentWillUnmount()}catch(o){k.__e(o,t)}r.base=r.__P=r.__n=null}if(r=e.__k)for(s=0;s<r.length;s++)r[s]&&Ve(r[s],t,n||typeof e.type!="function");n||$e(e.__e),e.__c=e.__=e.__e=void 0}function Et(e,t,n){return this.constructor(e,n)}function Be(e,t,n){var r,s,o,i;t==document&&(t=document.documentElement),k.__&&k.__(e,t),s=(r=typeof n=="function")?null:n&&n.__k||t.__k,o=[],i=[],ge(t,e=(!r&&n||t).__k=ve(re,null,[e]),s||X,X,t.namespaceURI,!r&&n?[n]:s?null:t.firstChild?ne.call(t.childNodes):null,o,!r&&n?n:s?s.__e:t.firstChild,r,i),He(o,e,i),e.props.children=null}ne=ee.slice,k={__e:function(e,t,n,r){for(var s,o,i;t=t.__;)if((s=t.__c)&&!s.__)try{if((o=s.constructor)&&o.getDerivedStateFromError!=null&&(s.setState(o.getDerivedStateFromError(e)),i=s.__d),s.componentDidCatch!=null&&(s.componentDidCatch(e,r||{}),i=s.__d),i)return s.__E=s}catch(u){e=u}throw e}},Pe=0,bt=function(e){return e!=null&&e.constructor===void 0},Q.prototype.setState=function(e,t){var n;n=this.__s!=null&&this.__s!=this.state?this.__s:this.__s=O({},this.state),typeof e=="function"&&(e=e(O({},n),this.props)),e&&O(n,e),e!=null&&this.__v&&(t&&this._sb.push(t),Le(this))},Q.prototype.forceUpdate=function(e){this.__v&&(this.__e=!0,e&&this.__h.push(e),Le(this))},Q.prototype.render=re,F=[],Me=typeof Promise=="function"?Promise.prototype.then.bind(Promise.resolve()):setTimeout,Ie=function(e,t){return e.__v.__b-t.__v.__b},te.__r=0,de=Math.random().toString(8),K="__d"+de,q="__a"+de,Oe=/(PointerCapture)$|Capture$/i,fe=0,me=Ne(!1),he=Ne(!0),kt=0;var z,w,be,We,ae=0,Qe=[],S=k,qe=S.__b,ze=S.__r,Je=S.diffed,Ye=S.__c,Ge=S.unmount,Ke=S.__;function xe(e,t){S.__h&&S.__h(w,e,ae||t),ae=0;var n=w.__H||(w.__H={__:[],__h:[]});return e>=n.__.length&&n.__.push({}),n.__[e]}function y(e){return ae=1,Lt(et,e)}function Lt(e,t,n){var r=xe(z++,2);if(r.t=e,!r.__c&&(r.__=[n?n(t):et(void 0,t),function(u){var c=r.__N?r.__N[0]:r.__[0],l=r.t(c,u);c!==l&&(r.__N=[l,r.__[1]],r.__c.setState({}))}],r.__c=w,!w.__f)){var s=function(u,c,l){if(!r.__c.__H)return!0;var _=!1,h=r.__c.props!==u;if(r.__c.__H.__.some(function(p){if(p.__N){_=!0;var v=p.__[0];p.__=p.__N,p.__N=void 0,v!==p.__[0]&&(h=!0)}}),o){var a=o.call(this,u,c,l);return _?a||h:a}return!_||h};w.__f=!0;var o=w.shouldComponentUpdate,i=w.componentWillUpdate;w.componentWillUpdate=function(u,c,l){if(this.__e){var _=o;o=void 0,s(u,c,l),o=_}i&&i.call(this,u,c,l)},w.shouldComponentUpdate=s}return r.__N||r.__}function C(e,t){var n=xe(z++,3);!S.__s&&Xe(n.__H,t)&&(n.__=e,n.u=t,w.__H.__h.push(n))}function ie(e){return ae=5,At(function(){return{current:e}},[])}function At(e,t){var n=xe(z++,7);return Xe(n.__H,t)&&(n.__=e(),n.__H=t,n.__h=e),n.__}function Nt(){for(var e;e=Qe.shift();){var t=e.__H;if(e.__P&&t)try{t.__h.some(se),t.__h.some(ke),t.__h=[]}catch(n){t.__h=[],S.__e(n,e.__v)}}}S.__b=function(e){w=null,qe&&qe(e)},S.__=function(e,t){e&&t.__k&&t.__k.__m&&(e.__m=t.__k.__m),Ke&&Ke(e,t)},S.__r=function(e){ze&&ze(e),z=0;var t=(w=e.__c).__H;t&&(be===w?(t.__h=[],w.__h=[],t.__.some(function(n){n.__N&&(n.__=n.__N),n.u=n.__N=void 0})):(t.__h.some(se),t.__h.some(ke),t.__h=[],z=0)),be=w},S.diffed=function(e){Je&&Je(e);var t=e.__c;t&&t.__H&&(t.__H.__h.length&&(Qe.push(t)!==1&&We===S.requestAnimationFrame||((We=S.requestAnimationFrame)||Pt)(Nt)),t.__H.__.some(function(n){n.u&&(n.__H=n.u,n.u=void 0)})),be=w=null},S.__c=function(e,t){t.some(function(n){try{n.__h.some(se),n.__h=n.__h.filter(function(r){return!r.__||ke(r)})}catch(r){t.some(function(s){s.__h&&(s.__h=[])}),t=[],S.__e(r,n.__v)}}),Ye&&Ye(e,t)},S.unmount=function(e){Ge&&Ge(e);var t,n=e.__c;n&&n.__H&&(n.__H.__.some(function(r){try{se(r)}catch(s){t=s}}),n.__H=void 0,t&&S.__e(t,n.__v))};var Ze=typeof requestAnimationFrame=="function";function Pt(e){var t,n=function(){clearTimeout(r),Ze&&cancelAnimationFrame(t),setTimeout(e)},r=setTimeout(n,35);Ze&&(t=requestAnimationFrame(n))}function se(e){var t=w,n=e.__c;typeof n=="function"&&(e.__c=void 0,n()),w=t}function ke(e){var t=w;e.__c=e.__(),w=t}function Xe(e,t){return!e||e.length!==t.length||t.some(function(n,r){return n!==e[r]})}function et(e,t){return typeof t=="function"?t(e):t}var nt=function(e,t,n,r){var s;t[0]=0;for(var o=1;o<t.length;o++){var i=t[o++],u=t[o]?(t[0]|=i?1:2,n[t[o++]]):t[++o];i===3?r[0]=u:i===4?r[1]=Object.assign(r[1]||{},u):i===5?(r[1]=r[1]||{})[t[++o]]=u:i===6?r[1][t[++o]]+=u+"":i?(s=e.apply(u,nt(e,u,n,["",null])),r.push(s),u[0]?t[0]|=2:(t[o-2]=0,t[o]=s)):r.push(u)}return r},tt=new Map;function ot(e){var t=tt.get(this);return t||(t=new Map,tt.set(this,t)),(t=nt(this,t.get(e)||(t.set(e,t=(function(n){for(var r,s,o=1,i="",u="",c=[0],l=function(a){o===1&&(a||(i=i.replace(/^\s*\n\s*|\s*\n\s*$/g,"")))?c.push(0,a,i):o===3&&(a||i)?(c.push(3,a,i),o=2):o===2&&i==="..."&&a?c.push(4,a,0):o===2&&i&&!a?c.push(5,0,!0,i):o>=5&&((i||!a&&o===5)&&(c.push(o,0,i,s),o=6),a&&(c.push(o,a,0,s),o=6)),i=""},_=0;_<n.length;_++){_&&(o===1&&l(),l(_));for(var h=0;h<n[_].length;h++)r=n[_][h],o===1?r==="<"?(l(),c=[c],o=3):i+=r:o===4?i==="--"&&r===">"?(o=1,i=""):i=r+i[0]:u?r===u?u="":i+=r:r==='"'||r==="'"?u=r:r===">"?(l(),o=1):o&&(r==="="?(o=5,s=i,i=""):r==="/"&&(o<5||n[_][h+1]===">")?(l(),o===3&&(c=c[0]),o=c,(c=c[0]).push(2,0,o),o=0):r===" "||r==="	"||r===`
`||r==="\r"?(l(),o=2):i+=r),o===3&&i==="!--"&&(o=4,c=c[0])}return l(),c})(e)),t),arguments,[])).length>1?t:t[0]}var d=ot.bind(ve);var we="recommendation-api.token",J=sessionStorage.getItem(we)||"";function rt(){return J}function U(e){J=e,e?sessionStorage.setItem(we,e):sessionStorage.removeItem(we)}var D=class extends Error{constructor(t,n,r){super(n),this.status=t,this.code=r}};function st(e){let t={Accept:"application/json",...e};return J&&(t.Authorization="Bearer "+J),t}async function at(e){let t=e.statusText||"HTTP "+e.status,n;try{let r=await e.json();r&&typeof r.message=="string"&&r.message&&(t=r.message),n=r&&r.code}catch{}return new D(e.status,t,n)}async function it(e,t,n){let r={method:e,headers:st(n===void 0?{}:{"Content-Type":"application/json"}),cache:"no-store"};n!==void 0&&(r.body=JSON.stringify(n));let s;try{s=await fetch(t,r)}catch(o){throw new D(0,"the server cannot be reached: "+o.message)}if(!s.ok){let o=await at(s);throw s.status===401&&J&&dispatchEvent(new CustomEvent("console-unauthorized",{detail:o.message})),o}return s.json()}var L=e=>it("GET",e),V=(e,t)=>it("POST",e,t??{});function lt(e){let t=new URLSearchParams;for(let[r,s]of Object.entries(e))s!=null&&s!==""&&s!==0&&t.set(r,String(s));let n=t.toString();return n?"?"+n:""}async function ct(e,t,n){let r=await fetch("/v1/training-jobs/"+encodeURIComponent(e)+":watch",{headers:st({}),signal:n,cache:"no-store"});if(!r.ok)throw await at(r);let s=r.body.pipeThrough(new TextDecoderStream).getReader(),o="";for(;;){let{value:i,done:u}=await s.read();if(u)break;o+=i;let c;for(;(c=o.indexOf(`
`))>=0;){let l=o.slice(0,c).trim();if(o=o.slice(c+1),!l)continue;let _=JSON.parse(l);if(_.error)throw new D(200,_.error.message||"the watch stream failed",_.error.code);_.result&&_.result.event&&t(_.result.event)}}}function ut({title:e,onClose:t,children:n,id:r="confirm-dialog"}){let s=ie(null);return C(()=>{let o=s.current,i=document.activeElement;o.showModal();let u=c=>{c.preventDefault(),t()};return o.addEventListener("cancel",u),()=>{o.removeEventListener("cancel",u),o.open&&o.close(),i&&i.isConnected&&i.focus()}},[]),d`<dialog ref=${s} id=${r} aria-labelledby=${r+"-title"}>
    <h2 id=${r+"-title"}>${e}</h2>
    ${n}
  </dialog>`}var x=(e,t=1)=>e==null||Number.isNaN(e)?"–":(100*e).toFixed(t)+"%",B=(e,t=4)=>e==null?"–":Number(e).toFixed(t);function pt(e){return e=Number(e),Number.isFinite(e)?e<1024?e+" B":e<1<<20?(e/1024).toFixed(1)+" KiB":(e/(1<<20)).toFixed(1)+" MiB":"–"}function H(e){if(!e)return"–";let t=new Date(e);return Number.isNaN(t.getTime())?e:t.toISOString().replace("T"," ").replace(/\.\d+Z$/,"Z")}function Se(e){if(!e)return"–";let t=parseFloat(e);if(!Number.isFinite(t))return e;if(t<60)return t.toFixed(1)+" s";let n=Math.floor(t/60);return n+" min "+Math.round(t-60*n)+" s"}var le=e=>{let t=/^v(\d+)\./.exec(e||"");return t?Number(t[1]):0};function ce(e,t){let n=(e||"").slice(1).split(".").map(Number),r=(t||"").slice(1).split(".").map(Number);for(let s=0;s<3;s++)if((n[s]||0)!==(r[s]||0))return(n[s]||0)-(r[s]||0);return 0}var W=(e,t)=>typeof e=="string"&&e.startsWith(t)?e.slice(t.length):String(e??"–");function Mt(e){try{return e.manifestJson?JSON.parse(e.manifestJson):null}catch{return null}}async function It(){let e=await L("/v1/models"),t=await Promise.all(e.versions.map(async s=>{let o=await L("/v1/models/"+encodeURIComponent(s.version));return{...o.model,manifest:Mt(o.model)}})),n=new Map;for(let s of t){let o=le(s.version);n.has(o)||n.set(o,{major:o,active:"",versions:[]});let i=n.get(o);i.versions.push(s),s.active&&(i.active=s.version)}let r=[...n.values()].sort((s,o)=>o.major-s.major);for(let s of r)s.versions.sort((o,i)=>ce(i.version,o.version));return r}function Ot({t:e}){if(!e)return d`<span class="muted">–</span>`;let t=e.hyperparameters||{};return d`<ul class="facts">
    <li>${Number(e.samples).toLocaleString("en")} samples (${Number(e.train_samples).toLocaleString("en")} train, ${Number(e.val_samples).toLocaleString("en")} validation)</li>
    <li>epochs ${e.epochs_run}/${e.epochs}, best ${e.best_epoch}; seed ${e.seed}</li>
    <li>loss ${B(e.train_loss)}, validation ${B(e.val_loss)}; ${e.duration_ms<1e3?e.duration_ms+" ms":(e.duration_ms/1e3).toFixed(1)+" s"}</li>
    ${e.parent_version?d`<li>parent ${e.parent_version}</li>`:null}
    ${Object.keys(t).length?d`<li><details><summary>hyperparameters</summary><ul class="hyper">${Object.entries(t).map(([n,r])=>d`<li><code>${n}</code> = ${r}</li>`)}</ul></details></li>`:null}
  </ul>`}function Rt({m:e,version:t}){if(!e)return d`<span class="muted">not evaluated</span>`;let n=(r,s)=>d`<tr>
    <th scope="row">${r}</th><td>${x(s.mem_limit_slack)}</td><td>${x(s.cpu_limit_slack)}</td><td>${x(s.oom_rate)}</td><td>${x(s.throttle_rate)}</td>
  </tr>`;return d`<table class="mini">
    <caption>${Number(e.held_out_samples).toLocaleString("en")} held-out samples (synthetic), ${t}</caption>
    <thead><tr><th scope="col">scored</th><th scope="col">mem limit slack</th><th scope="col">CPU limit slack</th><th scope="col">OOM</th><th scope="col">throttle</th></tr></thead>
    <tbody>${n("model",e.model)}${n("VPA p90×1.15",e.vpa_baseline)}</tbody>
  </table>`}function Ft({change:e,onClose:t,onDone:n}){let{kind:r,group:s}=e,o=s.versions.filter(f=>f.version!==s.active).map(f=>f.version),[i,u]=y(r==="activate"?e.version:""),[c,l]=y(""),[_,h]=y(null),[a,p]=y(!1),v=s.active||"none";async function m(f){if(f.preventDefault(),!c.trim()){h({message:"Give a reason: it is recorded in the history."});return}p(!0),h(null);try{let $;r==="activate"?$=await V("/v1/models/"+encodeURIComponent(i)+":activate",{reason:c,expectedActive:v}):$=await V("/v1/models:rollback",{toVersion:i,major:s.major,reason:c,expectedActive:v}),n($.changed?`${r==="activate"?"Activated":"Rolled back to"} ${$.model.version} (was ${$.previousVersion||"none"}).`:$.note||"Nothing changed.")}catch($){h($),p(!1)}}let g=r==="activate"?"Activate":"Roll back";return d`<${ut} title=${r==="activate"?`Activate ${i}?`:`Roll back major v${s.major}?`} onClose=${t}>
    <form onSubmit=${m}>
      <p>This page shows <strong>${s.active||"no version"}</strong> as active in major v${s.major}; the change is made only if that is still so.</p>
      ${r==="rollback"?d`<label for="rollback-target">Roll back to</label>
            <select id="rollback-target" value=${i} onChange=${f=>u(f.currentTarget.value)}>
              <option value="">the previously active version</option>
              ${o.map(f=>d`<option value=${f}>${f}</option>`)}
            </select>`:null}
      <label for="change-reason">Reason (recorded in the history)</label>
      <textarea id="change-reason" rows="3" required value=${c} onInput=${f=>l(f.currentTarget.value)}></textarea>
      ${_?d`<div class="error" role="alert" id="change-error">
            ${_.status===409?d`<p><strong>Refused: the page is out of date.</strong> The active version of major v${s.major} is no longer ${v}, so nothing was changed.</p>
                  <p>Server: ${_.message}</p>
                  <p><button type="button" onClick=${()=>n("")}>Reload the models</button></p>`:d`<p>${_.status?`Refused (${_.status}): `:""}${_.message}</p>`}
          </div>`:null}
      <div class="actions">
        <button type="button" class="secondary" onClick=${t}>Cancel</button>
        <button type="submit" disabled=${a} id="confirm-change">${g}</button>
      </div>
    </form>
  <//>`}function _t({canOperate:e}){let[t,n]=y(null),[r,s]=y(""),[o,i]=y(""),[u,c]=y(null),[l,_]=y(0);C(()=>{let a=!0;return It().then(p=>a&&(n(p),s(""))).catch(p=>a&&s(p.message)),()=>a=!1},[l]);let h=()=>_(a=>a+1);return d`<h1>Models</h1>
    <p role="status" class="notice" id="models-notice">${o}</p>
    ${r?d`<p class="error" role="alert">${r}</p>`:null}
    ${t===null&&!r?d`<p>Loading…</p>`:null}
    ${t&&t.length===0?d`<p>No version is registered.</p>`:null}
    ${(t||[]).map(a=>d`<section class="major" aria-labelledby=${"major-"+a.major}>
        <div class="section-head">
          <h2 id=${"major-"+a.major}>Major v${a.major}: active <span class="active-version" data-major=${a.major}>${a.active||"none"}</span></h2>
          ${e&&a.versions.length>1?d`<button type="button" class="rollback" data-major=${a.major} onClick=${()=>c({kind:"rollback",group:a})}>Roll back…</button>`:null}
        </div>
        <div class="scroll">
          <table class="versions">
            <caption>Kept versions of major v${a.major}, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Version</th><th scope="col">Created</th><th scope="col">Size</th><th scope="col">SHA-256</th>
                <th scope="col">Training</th><th scope="col">Held-out scores</th>${e?d`<th scope="col">Actions</th>`:null}
              </tr>
            </thead>
            <tbody>
              ${a.versions.map(p=>d`<tr data-version=${p.version} class=${p.active?"is-active":""}>
                  <th scope="row">${p.version}${p.active?d` <span class="badge">active</span>`:null}</th>
                  <td>${H(p.createdAt)}</td>
                  <td>${pt(p.sizeBytes)}<br /><span class="muted">${p.parameters} parameters</span></td>
                  <td><code class="sha">${p.sha256}</code></td>
                  <td><${Ot} t=${p.manifest&&p.manifest.training} /></td>
                  <td><${Rt} m=${p.manifest&&p.manifest.metrics} version=${p.version} /></td>
                  ${e?d`<td>${p.active?d`<span class="muted">serving</span>`:d`<button type="button" class="activate" data-version=${p.version} onClick=${()=>c({kind:"activate",group:a,version:p.version})}>Activate…</button>`}</td>`:null}
                </tr>`)}
            </tbody>
          </table>
        </div>
      </section>`)}
    ${u?d`<${Ft}
          change=${u}
          onClose=${()=>c(null)}
          onDone=${a=>{c(null),i(a),h()}}
        />`:null}`}var jt=["register","activate","rollback","auto_rollback","prune","upgrade"],Dt=[10,20,50,100];function dt(){let[e,t]=y({major:0,action:"",pageSize:10}),[n,r]=y([""]),[s,o]=y(null),[i,u]=y(""),[c,l]=y([]);C(()=>{L("/v1/models").then(m=>l([...new Set(m.versions.map(g=>le(g.version)))].sort((g,f)=>g-f))).catch(()=>l([]))},[]);let _=n[n.length-1],h=JSON.stringify([e,n.length,_]);C(()=>{let m=!0;return L("/v1/models/history"+lt({page_size:e.pageSize,page_token:_,major:e.major,action:e.action})).then(g=>m&&(o({key:h,page:g}),u(""))).catch(g=>m&&(o(null),u(g.message))),()=>m=!1},[h]);let a=s&&s.key===h?s.page:null,p=m=>g=>{let f=g.currentTarget.value;t({...e,[m]:m==="action"?f:Number(f)}),r([""])},v=a?a.entries:[];return d`<h1>History</h1>
    <form class="filters" onSubmit=${m=>m.preventDefault()}>
      <div>
        <label for="history-major">Major</label>
        <select id="history-major" value=${e.major} onChange=${p("major")}>
          <option value="0">all</option>
          ${c.map(m=>d`<option value=${m}>v${m}</option>`)}
        </select>
      </div>
      <div>
        <label for="history-action">Action</label>
        <select id="history-action" value=${e.action} onChange=${p("action")}>
          <option value="">all</option>
          ${jt.map(m=>d`<option value=${m}>${m}</option>`)}
        </select>
      </div>
      <div>
        <label for="history-size">Entries per page</label>
        <select id="history-size" value=${e.pageSize} onChange=${p("pageSize")}>
          ${Dt.map(m=>d`<option value=${m}>${m}</option>`)}
        </select>
      </div>
    </form>
    ${i?d`<p class="error" role="alert">${i}</p>`:null}
    <div class="scroll">
      <table class="history">
        <caption>Page ${n.length} of the history, newest first</caption>
        <thead>
          <tr><th scope="col">#</th><th scope="col">When (UTC)</th><th scope="col">Action</th><th scope="col">Major</th>
            <th scope="col">From</th><th scope="col">To</th><th scope="col">Who</th><th scope="col">Why</th></tr>
        </thead>
        <tbody>
          ${v.length===0&&a?d`<tr><td colspan="8">No entries.</td></tr>`:null}
          ${v.map(m=>d`<tr data-seq=${m.seq} data-action=${m.action}>
              <td>${m.seq}</td><td>${H(m.time)}</td><td>${m.action}</td><td>${m.major?"v"+m.major:"all"}</td>
              <td>${m.fromVersion||"–"}</td><td>${m.toVersion||"–"}</td><td class="actor">${m.actor}</td><td class="reason">${m.reason}</td>
            </tr>`)}
        </tbody>
      </table>
    </div>
    <nav class="pager" aria-label="History pages">
      <button type="button" disabled=${n.length===1} onClick=${()=>r([""])}>Newest</button>
      <button type="button" disabled=${n.length===1} onClick=${()=>r(n.slice(0,-1))}>Newer</button>
      <button type="button" id="history-older" disabled=${!a||!a.nextPageToken} onClick=${()=>r([...n,a.nextPageToken])}>Older</button>
    </nav>`}var ue=["#1f4e79","#b8480b","#2e7d32","#7b1fa2","#5d4037","#ad1457"],pe=["","6 3","2 3","8 3 2 3","4 4","1 2"];function mt(e,t,n){let r=t-e||1,s=r/n,o=Math.pow(10,Math.floor(Math.log10(s))),i=[1,2,2.5,5,10].map(c=>c*o).find(c=>r/c<=n)||10*o,u=[];for(let c=Math.ceil(e/i)*i;c<=t+i*1e-9;c+=i)u.push(Number(c.toPrecision(12)));return u}function Ce(e,t,n,r,s){let o=s?5:3;switch(e%4){case 0:return d`<circle cx=${t} cy=${n} r=${o} fill=${r} />`;case 1:return d`<rect x=${t-o} y=${n-o} width=${2*o} height=${2*o} fill=${r} />`;case 2:return d`<path d=${`M${t},${n-o-1}L${t+o+1},${n+o}L${t-o-1},${n+o}Z`} fill=${r} />`;default:return d`<path d=${`M${t},${n-o-1}L${t+o+1},${n}L${t},${n+o+1}L${t-o-1},${n}Z`} fill=${r} />`}}function Y({label:e,series:t,xLabel:n,yLabel:r,xFormat:s=String,yFormat:o=String,xDomain:i,yDomain:u,width:c=640,height:l=320}){let _={l:64,r:16,t:12,b:46},h=t.flatMap(b=>b.points);if(h.length===0)return d`<p class="muted">No points to draw yet.</p>`;let a=(b,E)=>E||[Math.min(...h.map(A=>A[b])),Math.max(...h.map(A=>A[b]))],[p,v]=a("x",i),[m,g]=a("y",u);p===v&&([p,v]=[p-1,v+1]),m===g&&([m,g]=[Math.max(0,m-Math.abs(m)*.1-.01),g+Math.abs(g)*.1+.01]);let f=c-_.l-_.r,$=l-_.t-_.b,T=b=>_.l+(b-p)/(v-p)*f,N=b=>_.t+$-(b-m)/(g-m)*$,I=mt(p,v,6),R=mt(m,g,5);return d`<figure class="chart">
    <svg viewBox=${`0 0 ${c} ${l}`} role="img" aria-label=${e} preserveAspectRatio="xMidYMid meet">
      <title>${e}</title>
      <g class="grid">
        ${R.map(b=>d`<line x1=${_.l} x2=${_.l+f} y1=${N(b)} y2=${N(b)} />`)}
        ${I.map(b=>d`<line y1=${_.t} y2=${_.t+$} x1=${T(b)} x2=${T(b)} />`)}
      </g>
      <g class="axis">
        <line x1=${_.l} x2=${_.l+f} y1=${_.t+$} y2=${_.t+$} />
        <line x1=${_.l} x2=${_.l} y1=${_.t} y2=${_.t+$} />
        ${I.map(b=>d`<text x=${T(b)} y=${_.t+$+16} text-anchor="middle">${s(b)}</text>`)}
        ${R.map(b=>d`<text x=${_.l-6} y=${N(b)+4} text-anchor="end">${o(b)}</text>`)}
        <text x=${_.l+f/2} y=${l-6} text-anchor="middle" class="axis-label">${n}</text>
        <text transform=${`translate(14 ${_.t+$/2}) rotate(-90)`} text-anchor="middle" class="axis-label">${r}</text>
      </g>
      ${t.map((b,E)=>{let A=ue[E%ue.length],P=b.points.map((M,yt)=>`${yt?"L":"M"}${T(M.x).toFixed(1)},${N(M.y).toFixed(1)}`).join("");return d`<g class="series">
          <path d=${P} fill="none" stroke=${A} stroke-width="2" stroke-dasharray=${pe[E%pe.length]||void 0} />
          ${b.points.map(M=>Ce(E,T(M.x),N(M.y),A,!1))}
          ${b.highlight?Ce(E,T(b.highlight.x),N(b.highlight.y),A,!0):null}
        </g>`})}
    </svg>
    <figcaption>
      <ul class="legend">
        ${t.map((b,E)=>{let A=ue[E%ue.length];return d`<li>
            <svg width="34" height="12" aria-hidden="true" focusable="false">
              <line x1="1" x2="33" y1="6" y2="6" stroke=${A} stroke-width="2" stroke-dasharray=${pe[E%pe.length]||void 0} />
              ${Ce(E,17,6,A,!1)}
            </svg>
            ${b.name}</li>`})}
      </ul>
    </figcaption>
  </figure>`}var ft=new Set(["JOB_STATE_SUCCEEDED","JOB_STATE_FAILED","JOB_STATE_CANCELLED"]),ht=[["ACTIVATION_POLICY_IF_BETTER","if better than the active version"],["ACTIVATION_POLICY_NEVER","never (register only)"],["ACTIVATION_POLICY_ALWAYS","always"]];function Ht({onStarted:e}){let[t,n]=y({samples:2e4,epochs:30,seed:1,activationPolicy:ht[0][0],bump:"patch",reason:""}),[r,s]=y(""),[o,i]=y(!1),u=(l,_)=>h=>n({...t,[l]:_?h.currentTarget.valueAsNumber:h.currentTarget.value});async function c(l){l.preventDefault(),i(!0),s("");try{let _={samples:String(t.samples),epochs:t.epochs,seed:String(t.seed),activationPolicy:t.activationPolicy,bump:t.bump,reason:t.reason},h=await V("/v1/training-jobs",_);e(h.job)}catch(_){s((_.status?`Refused (${_.status}): `:"")+_.message)}finally{i(!1)}}return d`<form class="start" onSubmit=${c} aria-labelledby="start-title">
    <h2 id="start-title">Start a training job</h2>
    <div class="grid">
      <div><label for="train-samples">Samples (simulated containers)</label>
        <input id="train-samples" type="number" min="1000" max="1000000" step="1" required value=${t.samples} onInput=${u("samples",!0)} /></div>
      <div><label for="train-epochs">Epochs (at most)</label>
        <input id="train-epochs" type="number" min="1" max="500" step="1" required value=${t.epochs} onInput=${u("epochs",!0)} /></div>
      <div><label for="train-seed">Seed</label>
        <input id="train-seed" type="number" step="1" required value=${t.seed} onInput=${u("seed",!0)} /></div>
      <div><label for="train-policy">Activate the new version</label>
        <select id="train-policy" value=${t.activationPolicy} onChange=${u("activationPolicy")}>
          ${ht.map(([l,_])=>d`<option value=${l}>${_}</option>`)}
        </select></div>
      <div><label for="train-bump">Version bump</label>
        <select id="train-bump" value=${t.bump} onChange=${u("bump")}>
          <option value="patch">patch</option><option value="minor">minor</option>
        </select></div>
      <div class="wide"><label for="train-reason">Reason (recorded in the job and the history)</label>
        <input id="train-reason" type="text" maxlength="1024" value=${t.reason} onInput=${u("reason")} /></div>
    </div>
    <button type="submit" disabled=${o} id="train-start">Start training</button>
    ${r?d`<p class="error" role="alert">${r}</p>`:null}
  </form>`}function Ut({ev:e}){if(!e)return null;let t=[];return e.candidate&&t.push(["candidate "+e.candidate.version,e.candidate.scores,e.candidate.meanLimitSlack]),e.active&&t.push(["active "+e.active.version,e.active.scores,e.active.meanLimitSlack]),e.vpaBaseline&&t.push(["VPA p90×1.15",e.vpaBaseline,(e.vpaBaseline.cpuLimitSlack+e.vpaBaseline.memLimitSlack)/2]),d`<table class="mini eval">
    <caption>Held-out evaluation: ${Number(e.heldOutSamples).toLocaleString("en")} simulated containers (seed ${e.heldOutSeed})</caption>
    <thead><tr><th scope="col">scored</th><th scope="col">mean limit slack</th><th scope="col">mem limit slack</th><th scope="col">CPU limit slack</th><th scope="col">OOM</th><th scope="col">throttle</th></tr></thead>
    <tbody>
      ${t.map(([n,r,s])=>d`<tr><th scope="row">${n}</th><td>${x(s)}</td><td>${x(r.memLimitSlack)}</td><td>${x(r.cpuLimitSlack)}</td><td>${x(r.oomRate)}</td><td>${x(r.throttleRate)}</td></tr>`)}
    </tbody>
  </table>
  ${e.activeError?d`<p class="muted">The active model was not evaluated: ${e.activeError}</p>`:null}`}function Vt({a:e}){return e?d`<p class="decision" data-activated=${String(e.activated)}>
    <strong>${W(e.policy,"ACTIVATION_POLICY_")}: ${e.activated?"activated":"not activated"}</strong>${" "}
    (${e.better?"better than":"not better than"} the active version). ${e.reason}
  </p>`:null}function Bt({job:e,curve:t,canOperate:n,onCancel:r}){let s=W(e.state,"JOB_STATE_"),o=e.progress||{},i=!ft.has(e.state);return d`<article class="job" data-job=${e.id} data-state=${s} aria-labelledby=${e.id+"-title"}>
    <h3 id=${e.id+"-title"}>${e.id} → ${e.version} <span class=${"state state-"+s.toLowerCase()}>${s}</span></h3>
    <p class="muted">
      ${e.params?`${Number(e.params.samples).toLocaleString("en")} samples, ${e.params.epochs} epochs, seed ${e.params.seed}, ${W(e.params.activationPolicy,"ACTIVATION_POLICY_")}; by ${e.params.actor}${e.params.reason?": "+e.params.reason:""}. `:""}
      Queued ${H(e.createdAt)}${e.finishedAt?", finished "+H(e.finishedAt):""}.
    </p>
    ${i?d`<div class="progress">
          <p><span class="phase">${W(o.phase,"JOB_PHASE_")}</span> · epoch <span class="epoch">${o.epoch||0}</span>/${o.epochs}
            · loss ${B(o.loss)} · validation ${B(o.valLoss)} · elapsed ${Se(o.elapsed)} · about ${Se(o.estimatedRemaining)} left</p>
          <progress max=${o.epochs||1} value=${o.epoch||0} aria-label=${"Epochs of "+e.id}></progress>
          ${n?d`<button type="button" class="secondary" onClick=${()=>r(e)}>Cancel</button>`:null}
        </div>`:null}
    ${t&&t.length?d`<${Y}
          label=${`Loss per epoch of ${e.id}`}
          xLabel="epoch"
          yLabel="loss"
          xFormat=${u=>Number.isInteger(u)?String(u):""}
          yFormat=${u=>u.toFixed(3)}
          width=${520}
          height=${220}
          series=${[{name:"training loss",points:t.map(u=>({x:u.epoch,y:u.loss}))},{name:"validation loss",points:t.map(u=>({x:u.epoch,y:u.valLoss}))}]}
        />
        <p class="muted">Epochs this page saw on the watch stream (a page opened late sees only the latest).</p>`:null}
    ${e.error?d`<p class="error">${e.error}</p>`:null}
    <${Ut} ev=${e.evaluation} />
    <${Vt} a=${e.activation} />
    ${e.prunedVersions&&e.prunedVersions.length?d`<p class="muted">Retention deleted ${e.prunedVersions.join(", ")}.</p>`:null}
  </article>`}function $t({canOperate:e}){let[t,n]=y(null),[r,s]=y({}),[o,i]=y(""),[u,c]=y(""),l=ie(new Map),_=()=>L("/v1/training-jobs").then(p=>(n(p.jobs),i(""))).catch(p=>i(p.message));C(()=>(_(),()=>{for(let p of l.current.values())p.abort();l.current.clear()}),[]);let h=p=>n(v=>(v||[]).map(m=>m.id===p.id?p:m));C(()=>{for(let p of t||[]){if(ft.has(p.state)||l.current.has(p.id))continue;let v=new AbortController;l.current.set(p.id,v),ct(p.id,m=>{m.epoch>0&&s(g=>{let f=g[p.id]||[];return f.some($=>$.epoch===m.epoch)?g:{...g,[p.id]:[...f,{epoch:m.epoch,loss:m.loss,valLoss:m.valLoss}]}}),m.job?(h(m.job),c(`${m.job.id} ended ${W(m.job.state,"JOB_STATE_")}.`)):n(g=>(g||[]).map(f=>f.id===m.jobId?{...f,state:m.state,progress:{phase:m.phase,epoch:m.epoch,epochs:m.epochs,loss:m.loss,valLoss:m.valLoss,elapsed:m.elapsed,estimatedRemaining:m.estimatedRemaining}}:f))},v.signal).catch(m=>{m.name!=="AbortError"&&i(`Watching ${p.id}: ${m.message}`)}).finally(()=>l.current.delete(p.id))}},[t]);async function a(p){try{let v=await V("/v1/training-jobs/"+encodeURIComponent(p.id)+":cancel",{});h(v.job)}catch(v){i(v.message)}}return d`<h1>Training</h1>
    ${e?d`<${Ht}
          onStarted=${p=>{c(`Queued ${p.id}, which will produce ${p.version}.`),n(v=>[p,...v||[]])}}
        />`:null}
    <p role="status" class="notice" id="training-notice">${u}</p>
    ${o?d`<p class="error" role="alert">${o}</p>`:null}
    <h2>Jobs</h2>
    ${t===null&&!o?d`<p>Loading…</p>`:null}
    ${t&&t.length===0?d`<p>No training job yet.</p>`:null}
    ${(t||[]).map(p=>d`<${Bt} key=${p.id} job=${p} curve=${r[p.id]} canOperate=${e} onCancel=${a} />`)}`}var _e=e=>(100*e).toFixed(0)+"%";function Wt({r:e}){let t=new Map(e.recommenders.map(o=>[o.name,o])),n=(e.memory_curves||[]).map(o=>({name:o.name,points:o.points.map(i=>({x:i.risk,y:i.slack})),highlight:t.has(o.name)?{x:t.get(o.name).oom_rate,y:t.get(o.name).mem_limit_slack.mean}:null})),r=(e.cpu_curves||[]).map(o=>({name:o.name,points:o.points.map(i=>({x:i.risk,y:i.slack})),highlight:t.has(o.name)?{x:t.get(o.name).throttle_rate.mean,y:t.get(o.name).cpu_limit_slack.mean}:null})),s=`${e.history_days}-day history: model ${e.model}`;return d`<section class="report" aria-label=${s}>
    <h3>${s}</h3>
    <p class="muted">${e.container_days} container-days of ${e.containers_scored} containers (${e.held_out_series} of ${e.series} traces held out from training).
      Each curve scales that recommender's limits; the large marker is the limit as recommended. Lower is better at equal risk.</p>
    <div class="charts">
      <${Y}
        label=${"Memory limit slack against OOM rate, "+s}
        xLabel="container-days with an OOM"
        yLabel="mean memory limit slack"
        xFormat=${_e}
        yFormat=${_e}
        yDomain=${[0,1]}
        series=${n}
      />
      <${Y}
        label=${"CPU limit slack against throttling, "+s}
        xLabel="CPU samples above the limit"
        yLabel="mean CPU limit slack"
        xFormat=${_e}
        yFormat=${_e}
        yDomain=${[0,1]}
        series=${r}
      />
    </div>
    <div class="scroll">
      <table class="mini">
        <caption>As recommended (means over container-days)</caption>
        <thead><tr><th scope="col">recommender</th><th scope="col">mem limit slack</th><th scope="col">OOM days</th><th scope="col">CPU limit slack</th><th scope="col">throttled samples</th></tr></thead>
        <tbody>
          ${e.recommenders.map(o=>d`<tr><th scope="row">${o.name}</th><td>${x(o.mem_limit_slack.mean)}</td><td>${x(o.oom_rate)} (${o.oom_days})</td><td>${x(o.cpu_limit_slack.mean)}</td><td>${x(o.throttle_rate.mean)}</td></tr>`)}
        </tbody>
      </table>
    </div>
    ${e.equal_risk&&e.equal_risk.length?d`<div class="scroll"><table class="mini">
          <caption>At equal risk: memory limits scaled to the reference's OOM rate</caption>
          <thead><tr><th scope="col">recommender</th><th scope="col">reference</th><th scope="col">factor</th><th scope="col">OOM days</th><th scope="col">mem limit slack</th><th scope="col">reference's slack</th></tr></thead>
          <tbody>
            ${e.equal_risk.map(o=>d`<tr><th scope="row">${o.name}</th><td>${o.reference}</td><td>×${o.factor.toFixed(2)}</td><td>${x(o.oom_rate)}</td><td>${x(o.mem_limit_slack.mean)}</td><td>${t.has(o.reference)?x(t.get(o.reference).mem_limit_slack.mean):"–"}</td></tr>`)}
          </tbody>
        </table></div>`:null}
  </section>`}function qt(){let[e,t]=y(null);if(C(()=>{L("/v1/models").then(r=>t(r.versions.slice().sort((s,o)=>ce(o.version,s.version)))).catch(()=>t([]))},[]),!e)return null;let n=e.filter(r=>r.evaluation);return d`<section aria-labelledby="manifest-scores">
    <h2 id="manifest-scores">Synthetic held-out scores of the kept versions</h2>
    <p class="muted">From each version's manifest: simulated held-out containers, scored against the VPA-style p90×1.15 baseline on the same data.</p>
    <div class="scroll"><table class="mini">
      <thead><tr><th scope="col">version</th><th scope="col">held out</th><th scope="col">mem limit slack (model / VPA)</th><th scope="col">CPU limit slack (model / VPA)</th><th scope="col">OOM (model / VPA)</th></tr></thead>
      <tbody>
        ${n.length===0?d`<tr><td colspan="5">No version records held-out scores.</td></tr>`:null}
        ${n.map(r=>{let s=r.evaluation;return d`<tr><th scope="row">${r.version}${r.active?" (active)":""}</th><td>${Number(s.heldOutSamples).toLocaleString("en")}</td>
            <td>${x(s.model.memLimitSlack)} / ${x(s.vpaBaseline.memLimitSlack)}</td>
            <td>${x(s.model.cpuLimitSlack)} / ${x(s.vpaBaseline.cpuLimitSlack)}</td>
            <td>${x(s.model.oomRate)} / ${x(s.vpaBaseline.oomRate)}</td></tr>`})}
      </tbody>
    </table></div>
  </section>`}function vt(){let[e,t]=y(null),[n,r]=y(""),[s,o]=y(null),[i,u]=y("");return C(()=>{L("/console/api/evaluations").then(c=>{t(c),c.evaluations.length&&r(c.evaluations[0].file)}).catch(c=>u(c.message))},[]),C(()=>{if(!n)return;let c=!0;return o(null),L("/console/api/evaluations/"+encodeURIComponent(n)).then(l=>c&&o(l)).catch(l=>c&&u(l.message)),()=>c=!1},[n]),d`<h1>Evaluation</h1>
    <h2>Real traces: model against VPA and KRR</h2>
    ${i?d`<p class="error" role="alert">${i}</p>`:null}
    ${e&&e.evaluations.length===0?d`<p>No evaluation report on the server. Write one with
          <code>recommendation-api evaluate --trace DIR --out ${e.dir||"DATA_DIR/evaluations"}/NAME.json</code>; this page shows every such file.</p>`:null}
    ${e&&e.unreadable.length?d`<p class="muted">Not shown: ${e.unreadable.map(c=>c.file+" ("+c.reason+")").join("; ")}</p>`:null}
    ${e&&e.evaluations.length?d`<form class="filters" onSubmit=${c=>c.preventDefault()}>
          <div>
            <label for="eval-file">Report</label>
            <select id="eval-file" value=${n} onChange=${c=>r(c.currentTarget.value)}>
              ${e.evaluations.map(c=>d`<option value=${c.file}>${c.file}: ${[...new Set(c.reports.map(l=>l.model))].join(", ")}</option>`)}
            </select>
          </div>
        </form>`:null}
    ${s?d`<p class="muted">Made by <code>recommendation-api ${s.command}</code>${s.revision?" at "+s.revision:""}.</p>
          ${s.reports.map(c=>d`<${Wt} r=${c} />`)}`:null}
    <${qt} />`}var Te=[{id:"models",title:"Models",component:_t},{id:"history",title:"History",component:dt},{id:"training",title:"Training",component:$t},{id:"evaluation",title:"Evaluation",component:vt}];function gt(){let e=location.hash.replace(/^#\/?/,"");return Te.find(t=>t.id===e)||Te[0]}function zt({onLogin:e,message:t}){let[n,r]=y(""),[s,o]=y(t||""),[i,u]=y(!1);async function c(l){l.preventDefault();let _=n.trim();if(!_){o("Enter a bearer token.");return}u(!0),U(_);try{e(await L("/console/api/whoami"))}catch(h){U(""),o(h instanceof D&&h.status===401?"The server refused this token: "+h.message:h.message)}finally{u(!1)}}return d`<main id="main" class="login">
    <h1>recommendation-api console</h1>
    <form onSubmit=${c} aria-describedby="login-help">
      <label for="token">Bearer token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" value=${n} onInput=${l=>r(l.currentTarget.value)} />
      <p id="login-help" class="muted">A token from the server's token file (role operator, agent or viewer). It is kept in this tab only, until you log out or close it.</p>
      <button type="submit" disabled=${i}>Log in</button>
      ${s?d`<p class="error" role="alert">${s}</p>`:null}
    </form>
  </main>`}function Jt(){let[e,t]=y(null),[n,r]=y(!0),[s,o]=y(""),[i,u]=y(gt());if(C(()=>{let h=()=>u(gt());return addEventListener("hashchange",h),()=>removeEventListener("hashchange",h)},[]),C(()=>{L("/console/api/whoami").then(t).catch(h=>{rt()&&(U(""),o(h.status===401?"Your session's token is no longer accepted: "+h.message:h.message))}).finally(()=>r(!1))},[]),C(()=>{document.title=(e?i.title+" · ":"")+"recommendation-api console"},[i,e]),C(()=>{let h=a=>{U(""),t(null),o("The server no longer accepts your token: "+a.detail)};return addEventListener("console-unauthorized",h),()=>removeEventListener("console-unauthorized",h)},[]),n)return d`<main id="main"><p role="status">Connecting…</p></main>`;if(!e)return d`<${zt} message=${s} onLogin=${h=>{o(""),t(h)}} />`;let c=e.role==="operator",l=i.component;function _(){U(""),t(null)}return d`
    <a class="skip" href="#main" onClick=${h=>{h.preventDefault(),document.getElementById("main").focus()}}>Skip to content</a>
    <header class="top">
      <span class="brand">recommendation-api</span>
      <nav aria-label="Pages">
        <ul>
          ${Te.map(h=>d`<li><a href=${"#/"+h.id} aria-current=${h.id===i.id?"page":void 0}>${h.title}</a></li>`)}
        </ul>
      </nav>
      <span class="who" id="who">
        ${e.authenticated?d`<span>${e.name} · <strong data-role=${e.role}>${e.role}</strong></span>
              <button type="button" class="link" onClick=${_}>Log out</button>`:d`<span><strong>authentication off</strong> (every caller is an operator)</span>`}
      </span>
    </header>
    <main id="main" tabindex="-1">
      ${c?null:d`<p class="banner" id="read-only">Read-only: your role is ${e.role}; changes need an operator token.</p>`}
      <${l} key=${i.id} canOperate=${c} identity=${e} />
    </main>`}Be(d`<${Jt} />`,document.getElementById("app"));
