package expr

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// member implements property reads (x.Name) on every kind of value. Host
// objects are dispatched with a type switch (no reflection).
func (ev *evaluator) member(v Value, name string) (Value, error) {
	// Nullable<T>.Value / HasValue on value types.
	if (name == "Value" || name == "HasValue") && v.k >= KBool && v.k <= KTimeSpan && v.k != KString {
		if name == "HasValue" {
			return Bool(true), nil
		}
		return v, nil
	}
	switch v.k {
	case KString:
		if name == "Length" {
			return Int(int64(utf16Len(v.s))), nil
		}
	case KBytes:
		if name == "Length" {
			return Int(int64(len(v.s))), nil
		}
	case KArray, KJArray:
		switch name {
		case "Length", "Count":
			return Int(int64(len(v.List().Items))), nil
		case "Type":
			return jtokenType(v), nil
		case "HasValues":
			return Bool(len(v.List().Items) > 0), nil
		}
	case KJObject, KDict:
		o := v.Object()
		switch name {
		case "Count":
			return Int(int64(o.Len())), nil
		case "Type":
			return jtokenType(v), nil
		case "HasValues":
			return Bool(o.Len() > 0), nil
		case "Keys":
			return StringArray(o.keys), nil
		case "Values":
			return NewArray(append([]Value(nil), o.vals...)), nil
		}
	case KJProperty:
		p := v.o.(*Property)
		switch name {
		case "Name", "Key":
			return String(p.Name), nil
		case "Value":
			return p.Value, nil
		case "Type":
			return jtokenType(v), nil
		}
	case KDateTime:
		return dateMember(v, name)
	case KTimeSpan:
		return timeSpanMember(time.Duration(v.n), name)
	case KHost:
		return ev.hostMember(v.o, name)
	}
	if name == "Type" && v.k <= KString {
		return jtokenType(v), nil
	}
	if name == "HasValue" {
		return Bool(v.k != KNull), nil
	}
	if name == "Value" && v.k != KHost {
		return v, nil // Nullable<T>.Value
	}
	return Null, fmt.Errorf("unknown member %s on %s", name, v.k)
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func strOrNull(s string) Value { return String(s) }

func (ev *evaluator) hostMember(o any, name string) (Value, error) {
	switch h := o.(type) {
	case Context:
		switch name {
		case "Request":
			return Host(h.Request()), nil
		case "Response":
			if r := h.Response(); r != nil {
				return Host(r), nil
			}
			return Null, nil
		case "Variables":
			return Host(h.Variables()), nil
		case "Api":
			if a := h.Api(); a != nil {
				return Host(a), nil
			}
		case "Operation":
			if a := h.Operation(); a != nil {
				return Host(a), nil
			}
		case "Product":
			if a := h.Product(); a != nil {
				return Host(a), nil
			}
		case "Subscription":
			if a := h.Subscription(); a != nil {
				return Host(a), nil
			}
		case "User":
			if a := h.User(); a != nil {
				return Host(a), nil
			}
		case "Deployment":
			if a := h.Deployment(); a != nil {
				return Host(a), nil
			}
		case "LastError":
			if a := h.LastError(); a != nil {
				return Host(a), nil
			}
		case "RequestId":
			return String(h.RequestID()), nil
		case "Timestamp":
			return Time(h.Timestamp()), nil
		case "Elapsed":
			return Duration(h.Elapsed()), nil
		case "Tracing":
			return Bool(false), nil
		default:
			return Null, fmt.Errorf("unknown member context.%s", name)
		}
		return Null, nil
	case Request:
		switch name {
		case "Method":
			return String(h.Method()), nil
		case "Url":
			return Host(h.Url()), nil
		case "OriginalUrl":
			return Host(h.OriginalUrl()), nil
		case "Headers":
			return Host(h.Headers()), nil
		case "IpAddress":
			return String(h.IpAddress()), nil
		case "MatchedParameters":
			return Host(h.MatchedParameters()), nil
		case "Body":
			if b := h.Body(); b != nil {
				return Host(b), nil
			}
			return Null, nil
		case "Certificate":
			return Null, nil
		}
	case Response:
		switch name {
		case "StatusCode":
			return Int(int64(h.StatusCode())), nil
		case "StatusReason":
			return String(h.StatusReason()), nil
		case "Headers":
			return Host(h.Headers()), nil
		case "Body":
			if b := h.Body(); b != nil {
				return Host(b), nil
			}
			return Null, nil
		}
	case URL:
		switch name {
		case "Scheme":
			return String(h.Scheme()), nil
		case "Host":
			return String(h.Host()), nil
		case "Port":
			return Int(int64(h.Port())), nil
		case "Path":
			return String(h.Path()), nil
		case "QueryString":
			return String(h.QueryString()), nil
		case "Query":
			return Host(h.Query()), nil
		}
	case MultiMap:
		switch name {
		case "Count":
			return Int(int64(len(h.Names()))), nil
		case "Keys":
			return StringArray(h.Names()), nil
		}
	case StringMap:
		switch name {
		case "Count":
			return Int(int64(len(h.Names()))), nil
		case "Keys":
			return StringArray(h.Names()), nil
		}
	case *ApiInfo:
		switch name {
		case "Id":
			return String(h.Id), nil
		case "Name":
			return String(h.Name), nil
		case "Path":
			return String(h.Path), nil
		case "Version":
			return strOrNull(h.Version), nil
		case "Revision":
			return String(h.Revision), nil
		case "IsCurrentRevision":
			return Bool(h.IsCurrentRevision), nil
		case "ServiceUrl":
			return Host(h.ServiceUrl), nil
		}
	case *OperationInfo:
		switch name {
		case "Id":
			return String(h.Id), nil
		case "Name":
			return String(h.Name), nil
		case "Method":
			return String(h.Method), nil
		case "UrlTemplate":
			return String(h.UrlTemplate), nil
		}
	case *ProductInfo:
		switch name {
		case "Id":
			return String(h.Id), nil
		case "Name":
			return String(h.Name), nil
		case "ApprovalRequired":
			return Bool(h.ApprovalRequired), nil
		case "SubscriptionRequired":
			return Bool(h.SubscriptionRequired), nil
		}
	case *SubscriptionInfo:
		switch name {
		case "Id":
			return String(h.Id), nil
		case "Name":
			return String(h.Name), nil
		case "Key":
			return String(h.Key), nil
		case "PrimaryKey":
			return String(h.PrimaryKey), nil
		case "SecondaryKey":
			return String(h.SecondaryKey), nil
		case "CreatedDate":
			return Time(h.CreatedDate), nil
		}
	case *UserInfo:
		switch name {
		case "Id":
			return String(h.Id), nil
		case "Email":
			return String(h.Email), nil
		case "FirstName":
			return String(h.FirstName), nil
		case "LastName":
			return String(h.LastName), nil
		case "Note":
			return String(h.Note), nil
		case "Groups":
			items := make([]Value, len(h.Groups))
			for i := range h.Groups {
				items[i] = Host(&h.Groups[i])
			}
			return NewArray(items), nil
		}
	case *GroupInfo:
		switch name {
		case "Id":
			return String(h.Id), nil
		case "Name":
			return String(h.Name), nil
		}
	case *DeploymentInfo:
		switch name {
		case "Region":
			return String(h.Region), nil
		case "ServiceName":
			return String(h.ServiceName), nil
		case "GatewayId":
			return String(h.GatewayId), nil
		}
	case *ErrorInfo:
		switch name {
		case "Source":
			return String(h.Source), nil
		case "Reason":
			return String(h.Reason), nil
		case "Message":
			return String(h.Message), nil
		case "Scope":
			return String(h.Scope), nil
		case "Section":
			return String(h.Section), nil
		case "Path":
			return String(h.Path), nil
		case "PolicyId":
			return String(h.PolicyId), nil
		}
	case *exceptionValue:
		if name == "Message" {
			return String(h.msg), nil
		}
	case *stringBuilder:
		if name == "Length" {
			return Int(int64(utf16Len(h.b.String()))), nil
		}
	default:
		return apimMember(o, name)
	}
	return Null, fmt.Errorf("unknown member %s on %s", name, hostTypeName(o))
}

func hostTypeName(o any) string {
	switch o.(type) {
	case Context:
		return "context"
	case Request:
		return "IRequest"
	case Response:
		return "IResponse"
	case URL:
		return "IUrl"
	case MultiMap, StringMap:
		return "IReadOnlyDictionary"
	case Body:
		return "IMessageBody"
	case Variables:
		return "Variables"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", o), "*expr.")
}

// index implements x[key].
func (ev *evaluator) index(v Value, key Value) (Value, error) {
	switch v.k {
	case KString:
		i, err := intIndex(key, utf16Len(v.s))
		if err != nil {
			return Null, err
		}
		u := utf16.Encode([]rune(v.s))
		return Char(rune(u[i])), nil
	case KBytes:
		i, err := intIndex(key, len(v.s))
		if err != nil {
			return Null, err
		}
		return Int(int64(v.s[i])), nil
	case KArray, KJArray:
		items := v.List().Items
		i, err := intIndex(key, len(items))
		if err != nil {
			return Null, err
		}
		return items[i], nil
	case KJObject:
		if key.k != KString {
			return Null, fmt.Errorf("accessed JObject values with invalid key value: %s; object property name expected", toString(key))
		}
		r, _ := v.Object().Get(key.s)
		return r, nil
	case KDict:
		r, ok := v.Object().Get(toString(key))
		if !ok {
			return Null, fmt.Errorf("the given key '%s' was not present in the dictionary", toString(key))
		}
		return r, nil
	case KHost:
		name := toString(key)
		switch h := v.o.(type) {
		case Variables:
			r, ok := h.Get(name)
			if !ok {
				return Null, fmt.Errorf("the given key '%s' was not present in the dictionary", name)
			}
			return r, nil
		case MultiMap:
			r, ok := h.Get(name)
			if !ok {
				return Null, fmt.Errorf("the given key '%s' was not present in the dictionary", name)
			}
			return StringArray(r), nil
		case StringMap:
			r, ok := h.Get(name)
			if !ok {
				return Null, fmt.Errorf("the given key '%s' was not present in the dictionary", name)
			}
			return String(r), nil
		case *matchGroups:
			return h.get(key)
		}
	}
	return Null, fmt.Errorf("cannot apply indexing to %s", v.k)
}

func intIndex(key Value, n int) (int, error) {
	if key.k != KInt && key.k != KChar {
		return 0, fmt.Errorf("index must be an integer, got %s", key.k)
	}
	if key.n < 0 || key.n >= int64(n) {
		return 0, fmt.Errorf("index was outside the bounds of the array (index %d, length %d)", key.n, n)
	}
	return int(key.n), nil
}

func (ev *evaluator) setIndex(v Value, key Value, val Value) error {
	switch v.k {
	case KJObject:
		v.Object().Set(toString(key), toJToken(val))
		return nil
	case KDict:
		v.Object().Set(toString(key), val)
		return nil
	case KArray, KJArray:
		items := v.List().Items
		i, err := intIndex(key, len(items))
		if err != nil {
			return err
		}
		items[i] = val
		return nil
	case KHost:
		if vars, ok := v.o.(Variables); ok {
			vars.Set(toString(key), val)
			return nil
		}
	case KNull:
		return fmt.Errorf("object reference not set to an instance of an object")
	}
	return fmt.Errorf("cannot assign through an indexer on %s", v.k)
}

// toJToken converts CLR values stored into JSON containers the way
// Newtonsoft's implicit conversions do (arrays become JArray).
func toJToken(v Value) Value {
	if v.k == KArray {
		return Value{k: KJArray, o: v.o}
	}
	if v.k == KDict {
		return Value{k: KJObject, o: v.o}
	}
	return v
}

// enumerate yields the elements of anything foreach or LINQ can walk.
func (ev *evaluator) enumerate(v Value) ([]Value, error) {
	switch v.k {
	case KArray, KJArray:
		return v.List().Items, nil
	case KJObject, KDict:
		o := v.Object()
		out := make([]Value, o.Len())
		for i, k := range o.keys {
			out[i] = Value{k: KJProperty, o: &Property{Name: k, Value: o.vals[i]}}
		}
		return out, nil
	case KString:
		out := make([]Value, 0, len(v.s))
		for _, r := range v.s {
			out = append(out, Char(r))
		}
		return out, nil
	case KBytes:
		out := make([]Value, len(v.s))
		for i := 0; i < len(v.s); i++ {
			out[i] = Int(int64(v.s[i]))
		}
		return out, nil
	case KHost:
		switch h := v.o.(type) {
		case MultiMap:
			names := h.Names()
			out := make([]Value, len(names))
			for i, n := range names {
				vals, _ := h.Get(n)
				out[i] = Value{k: KJProperty, o: &Property{Name: n, Value: StringArray(vals)}}
			}
			return out, nil
		case StringMap:
			names := h.Names()
			out := make([]Value, len(names))
			for i, n := range names {
				s, _ := h.Get(n)
				out[i] = Value{k: KJProperty, o: &Property{Name: n, Value: String(s)}}
			}
			return out, nil
		case *matchGroups:
			return h.groups, nil
		}
	case KNull:
		return nil, fmt.Errorf("value cannot be null (enumerating null)")
	}
	return nil, fmt.Errorf("%s is not enumerable", v.k)
}
