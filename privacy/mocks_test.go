package privacy_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/mock/gomock"

	"github.com/stewardlabs/steward/mocks"
	"github.com/stewardlabs/steward/privacy"
	pmocks "github.com/stewardlabs/steward/privacy/mocks"
)

// A store that keeps failing must stop erasure before the identity: the
// identity provider mock fails the test on any DeleteUser call.
func TestFailingStoreNeverReachesIdentity(t *testing.T) {
	ctrl := gomock.NewController(t)
	idp := mocks.NewMockIdentityProvider(ctrl) // no calls expected
	ds := pmocks.NewMockDataStore(ctrl)
	ds.EXPECT().Name().Return("orders").AnyTimes()
	ds.EXPECT().Erase(gomock.Any(), testUser).Return(privacy.Erased{}, errors.New("db down")).Times(fastRetry.MaxAttempts)
	ext := pmocks.NewMockExternalService(ctrl)
	ext.EXPECT().Name().Return("analytics").AnyTimes()

	svc, err := privacy.NewService(idp, privacy.WithStores(ds), privacy.WithExternal(ext), privacy.WithRetry(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Erase(context.Background(), testUser); !errors.Is(err, privacy.ErrPartialDeletion) {
		t.Fatalf("Erase error = %v; want ErrPartialDeletion", err)
	}
}

// A hold check that fails leaves the request as it was and touches nothing.
func TestHoldCheckErrorTouchesNothing(t *testing.T) {
	ctrl := gomock.NewController(t)
	idp := mocks.NewMockIdentityProvider(ctrl)
	ds := pmocks.NewMockDataStore(ctrl)
	ds.EXPECT().Name().Return("orders").AnyTimes()
	holds := pmocks.NewMockHoldChecker(ctrl)
	holds.EXPECT().Held(gomock.Any(), testUser).Return(false, "", errors.New("holds table missing"))

	reqs := privacy.NewMemoryRequestStore()
	svc, err := privacy.NewService(idp, privacy.WithStores(ds), privacy.WithHoldChecker(holds), privacy.WithRequestStore(reqs))
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Erase(context.Background(), testUser)
	if err == nil || errors.Is(err, privacy.ErrLegalHold) {
		t.Fatalf("Erase error = %v; want the hold checker's error", err)
	}
	req, err := reqs.Get(context.Background(), res.RequestID)
	if err != nil || req.Status != privacy.StatusPending {
		t.Errorf("request %+v, %v; want it stored and still pending", req, err)
	}
}
