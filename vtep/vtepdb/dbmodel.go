package vtepdb

import (
	"errors"
	"sync"

	"github.com/ovn-org/libovsdb/model"
)

// DatabaseModel returns the models bound to the schema (built once): what
// libovsdb's mapper needs to turn a model into an OVSDB row or mutation,
// with the column names, types and references the schema gives, without a
// client or a cache.
func DatabaseModel() (model.DatabaseModel, error) { return databaseModel() }

var databaseModel = sync.OnceValues(func() (model.DatabaseModel, error) {
	cdm, err := FullDatabaseModel()
	if err != nil {
		return model.DatabaseModel{}, err
	}
	dbm, errs := model.NewDatabaseModel(Schema(), cdm)
	if len(errs) > 0 {
		return model.DatabaseModel{}, errors.Join(errs...)
	}
	return dbm, nil
})
