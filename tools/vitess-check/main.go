// vitess-check asks Vitess's own code about our Vitess files and statements, so the
// tests don't rest on our reading of Vitess's docs. Test infrastructure only: it is
// built by tools/build-go-tools.sh from the pinned vitess.io/vitess module.
//
//	vitess-check schema  SCHEMA.sql VSCHEMA.json   parse the DDL, build the VSchema, cross-check
//	vitess-check plan    VSCHEMA.json                plan each statement of a JSON array on stdin,
//	                                                 with the keyspace ids of its shard_key values
//	vitess-check ksid    VALUE...                  the hash vindex's keyspace id of each integer
//
// Every command prints one JSON document on stdout and exits 0; findings are data.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"vitess.io/vitess/go/json2"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/test/vschemawrapper"
	"vitess.io/vitess/go/vt/key"
	vschemapb "vitess.io/vitess/go/vt/proto/vschema"
	"vitess.io/vitess/go/vt/sqlparser"
	"vitess.io/vitess/go/vt/vtenv"
	"vitess.io/vitess/go/vt/vtgate/engine"
	"vitess.io/vitess/go/vt/vtgate/planbuilder"
	"vitess.io/vitess/go/vt/vtgate/vindexes"
)

type column struct {
	Type    string `json:"type"`
	NotNull bool   `json:"not_null"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "vitess-check: "+format+"\n", args...)
	os.Exit(2)
}

func emit(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fail("%v", err)
	}
}

// parseSchema parses every statement with Vitess's MySQL parser and returns the
// columns of each CREATE TABLE, plus statements it could not parse.
func parseSchema(parser *sqlparser.Parser, path string) (map[string]map[string]column, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	pieces, err := parser.SplitStatementToPieces(string(data))
	if err != nil {
		fail("split %s: %v", path, err)
	}
	tables := map[string]map[string]column{}
	var problems []string
	for _, piece := range pieces {
		if strings.TrimSpace(piece) == "" {
			continue
		}
		stmt, err := parser.Parse(piece)
		if err != nil {
			problems = append(problems, fmt.Sprintf("parse: %v", err))
			continue
		}
		create, ok := stmt.(*sqlparser.CreateTable)
		if !ok {
			problems = append(problems, fmt.Sprintf("not a CREATE TABLE: %s", sqlparser.String(stmt)))
			continue
		}
		cols := map[string]column{}
		for _, col := range create.TableSpec.Columns {
			notNull := col.Type.Options != nil && col.Type.Options.Null != nil && !*col.Type.Options.Null
			cols[col.Name.Lowered()] = column{Type: strings.ToLower(col.Type.Type), NotNull: notNull}
		}
		tables[create.Table.Name.String()] = cols
	}
	return tables, problems
}

func loadVSchema(parser *sqlparser.Parser, path, keyspace string) (*vschemapb.Keyspace, *vindexes.VSchema) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	ks := &vschemapb.Keyspace{}
	if err := json2.UnmarshalPB(data, ks); err != nil {
		fail("vschema %s: %v", path, err)
	}
	srv := &vschemapb.SrvVSchema{Keyspaces: map[string]*vschemapb.Keyspace{keyspace: ks}}
	return ks, vindexes.BuildVSchema(srv, parser)
}

func checkSchema(schemaPath, vschemaPath string) {
	parser := sqlparser.NewTestParser()
	tables, problems := parseSchema(parser, schemaPath)
	ks, vs := loadVSchema(parser, vschemaPath, "check")
	if err := vs.Keyspaces["check"].Error; err != nil {
		problems = append(problems, fmt.Sprintf("vschema: %v", err))
	}
	if _, err := vindexes.BuildKeyspace(ks, parser); err != nil {
		problems = append(problems, fmt.Sprintf("vschema: %v", err))
	}
	vindexTypes := map[string]string{}
	for name, v := range ks.Vindexes {
		vindexTypes[name] = v.Type
	}
	for name, table := range ks.Tables {
		cols, ok := tables[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("vschema table %s is not in the schema", name))
			continue
		}
		for _, cv := range table.ColumnVindexes {
			c, ok := cols[strings.ToLower(cv.Column)]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: vindex column %s is not a column", name, cv.Column))
			case !c.NotNull:
				problems = append(problems, fmt.Sprintf("%s: vindex column %s may be NULL", name, cv.Column))
			case vindexTypes[cv.Name] == "hash" && !strings.HasSuffix(c.Type, "int"):
				problems = append(problems, fmt.Sprintf("%s: hash vindex on non-integer column %s (%s)", name, cv.Column, c.Type))
			}
		}
	}
	for name := range tables {
		if _, ok := ks.Tables[name]; !ok && ks.Sharded {
			problems = append(problems, fmt.Sprintf("schema table %s has no place in the sharded vschema", name))
		}
	}
	emit(map[string]any{"tables": tables, "problems": problems})
}

func plan(vschemaPath string) {
	// "main": the test wrapper's keyspace lookup only works reliably for that name, and
	// our statements never name their keyspace (the connection's database does).
	const keyspace = "main"
	var statements []string
	if err := json.NewDecoder(os.Stdin).Decode(&statements); err != nil {
		fail("stdin must be a JSON array of statements: %v", err)
	}
	parser := sqlparser.NewTestParser()
	_, vs := loadVSchema(parser, vschemaPath, keyspace)
	vw, err := vschemawrapper.NewVschemaWrapper(vtenv.NewTestEnv(), vs, planbuilder.TestBuilder)
	if err != nil {
		fail("%v", err)
	}
	vw.Keyspace = vs.Keyspaces[keyspace].Keyspace
	vw.Version = planbuilder.Gen4
	hash, err := vindexes.CreateVindex("hash", "hash", nil)
	if err != nil {
		fail("%v", err)
	}
	out := make([]map[string]any, 0, len(statements))
	for _, stmt := range statements {
		result := map[string]any{"statement": stmt}
		p, err := planOne(stmt, vw, keyspace)
		if err != nil {
			result["error"] = err.Error()
		} else {
			raw, err := json.Marshal(p)
			if err != nil {
				fail("%v", err)
			}
			var decoded map[string]any
			_ = json.Unmarshal(raw, &decoded)
			result["plan"] = decoded["Instructions"]
		}
		if ids, err := shardKeyIDs(parser, hash, stmt); err != nil {
			result["error"] = err.Error()
		} else if len(ids) > 0 {
			result["keyspace_ids"] = ids
		}
		out = append(out, result)
	}
	emit(out)
}

// shardKeyIDs finds the shard_key literals a statement carries (an INSERT's rows, a
// WHERE's shard_key = / IN) and returns the keyspace id the hash vindex gives each:
// the shards a transaction touches, as vtgate will compute them.
func shardKeyIDs(parser *sqlparser.Parser, hash vindexes.Vindex, query string) ([]string, error) {
	stmt, err := parser.Parse(query)
	if err != nil {
		return nil, err
	}
	var literals []*sqlparser.Literal
	if ins, ok := stmt.(*sqlparser.Insert); ok {
		idx := -1
		for i, col := range ins.Columns {
			if col.EqualString("shard_key") {
				idx = i
			}
		}
		if rows, ok := ins.Rows.(sqlparser.Values); ok && idx >= 0 {
			for _, row := range rows {
				if lit, ok := row[idx].(*sqlparser.Literal); ok {
					literals = append(literals, lit)
				}
			}
		}
	}
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		cmp, ok := node.(*sqlparser.ComparisonExpr)
		if !ok {
			return true, nil
		}
		if col, ok := cmp.Left.(*sqlparser.ColName); !ok || !col.Name.EqualString("shard_key") {
			return true, nil
		}
		switch right := cmp.Right.(type) {
		case *sqlparser.Literal:
			literals = append(literals, right)
		case sqlparser.ValTuple:
			for _, e := range right {
				if lit, ok := e.(*sqlparser.Literal); ok {
					literals = append(literals, lit)
				}
			}
		}
		return false, nil
	}, stmt)
	ids := make([]sqltypes.Value, 0, len(literals))
	for _, lit := range literals {
		n, err := strconv.ParseUint(lit.Val, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("shard_key %q is not an integer", lit.Val)
		}
		ids = append(ids, sqltypes.NewUint64(n))
	}
	dests, err := hash.(vindexes.SingleColumn).Map(context.Background(), nil, ids)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(dests))
	for i, d := range dests {
		if ksid, ok := d.(key.DestinationKeyspaceID); ok {
			out[i] = hex.EncodeToString(ksid)
		}
	}
	return out, nil
}

func planOne(stmt string, vw *vschemawrapper.VSchemaWrapper, keyspace string) (p *engine.Plan, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("planner panicked: %v", r)
		}
	}()
	return planbuilder.TestBuilder(stmt, vw, keyspace)
}

func keyspaceIDs(values []string) {
	vindex, err := vindexes.CreateVindex("hash", "hash", nil)
	if err != nil {
		fail("%v", err)
	}
	ids := make([]sqltypes.Value, len(values))
	for i, v := range values {
		ids[i] = sqltypes.NewInt64(0)
		if strings.HasPrefix(v, "u") { // an unsigned literal, as a BIGINT UNSIGNED would be
			ids[i] = sqltypes.NewUint64(0)
		}
		n, err := sqltypes.NewValue(ids[i].Type(), []byte(strings.TrimPrefix(v, "u")))
		if err != nil {
			fail("%s: %v", v, err)
		}
		ids[i] = n
	}
	dests, err := vindex.(vindexes.SingleColumn).Map(context.Background(), nil, ids)
	if err != nil {
		fail("%v", err)
	}
	out := map[string]string{}
	for i, d := range dests {
		if ksid, ok := d.(key.DestinationKeyspaceID); ok {
			out[values[i]] = hex.EncodeToString(ksid)
		} else {
			out[values[i]] = ""
		}
	}
	emit(out)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: vitess-check schema|plan|ksid ...")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "schema":
		if len(args) != 2 {
			fail("usage: vitess-check schema SCHEMA.sql VSCHEMA.json")
		}
		checkSchema(args[0], args[1])
	case "plan":
		if len(args) != 1 {
			fail("usage: vitess-check plan VSCHEMA.json < statements.json")
		}
		plan(args[0])
	case "ksid":
		keyspaceIDs(args)
	default:
		fail("unknown command %q", os.Args[1])
	}
}
